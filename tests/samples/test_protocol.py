"""Protocol versions: a change makes a new version signed into force; subjects keep theirs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lims.errors import DomainError
from lims.signatures import SignatureRequest, signatures_for
from samples.models import ProtocolStatus
from samples.services import protocol_approve, protocol_in_force, protocol_revise, subject_register
from tests.factories import subject_dates


def _approve(protocol, manager, password):
    return protocol_approve(
        protocol=protocol,
        acting_user=manager,
        signature=SignatureRequest(
            username=manager.username, password=password, meaning="approved", reason="amendment 1 approved"
        ),
    )


def test_the_demo_protocol_carries_the_registered_parameters(study):
    protocol = protocol_in_force(study)
    assert (protocol.version, protocol.eligible_sexes, protocol.age_min_years, protocol.age_max_years) == (
        1,
        "F",
        35,
        60,
    )
    assert (protocol.dose_min_million_per_kg, protocol.dose_max_million_per_kg) == (Decimal("1"), Decimal("2"))
    assert protocol.max_hours_collection_to_receipt == Decimal("24")
    assert [(v.name, v.month, v.window_days) for v in protocol.visits.all()] == [
        ("Baseline", 0, 14),
        ("Month 1", 1, 7),
        ("Month 6", 6, 14),
        ("Month 12", 12, 30),
    ]
    assert protocol.analytes.get(primary=True).name == "Treg"
    assert protocol.criteria.filter(kind="exclusion").count() == 2
    assert not protocol.criteria.filter(text__istartswith="age").exists(), "age is evaluated, not asked"


def test_changing_the_dose_window_makes_a_new_version_and_old_subjects_keep_theirs(
    study, clinician, lab_manager, password
):
    before = subject_register(study=study, acting_user=clinician, sex="F", **subject_dates())
    draft = protocol_revise(
        study=study,
        acting_user=lab_manager,
        changes={"dose_max_million_per_kg": Decimal("1.5")},
        change_summary="amendment 1: lower maximum dose",
    )
    assert (draft.version, draft.status) == (2, ProtocolStatus.DRAFT)
    assert draft.criteria.count() == before.protocol.criteria.count()
    _approve(draft, lab_manager, password)
    after = subject_register(study=study, acting_user=clinician, sex="F", **subject_dates())
    before.refresh_from_db()
    assert before.protocol.version == 1
    assert before.protocol.dose_max_million_per_kg == Decimal("2.000")
    assert before.protocol.status == ProtocolStatus.SUPERSEDED
    assert after.protocol.version == 2
    assert after.protocol.dose_max_million_per_kg == Decimal("1.500")
    [check] = signatures_for(draft)
    assert check.signature.printed_name == "Maria Manager"


def test_a_protocol_with_a_zero_feed_interval_is_refused(study, lab_manager):
    with pytest.raises(DomainError, match="intervals must be longer than zero"):
        protocol_revise(
            study=study, acting_user=lab_manager, changes={"feed_interval_hours": Decimal("0")}, change_summary="typo"
        )
    assert study.protocol_versions.count() == 1


def test_an_unknown_parameter_is_refused(study, lab_manager):
    with pytest.raises(DomainError, match="Unknown protocol parameters: colour"):
        protocol_revise(study=study, acting_user=lab_manager, changes={"colour": "blue"}, change_summary="x")


@pytest.mark.requirement("CFR11.10g")
def test_only_the_lab_manager_may_approve(study, lab_manager, qa_officer, password):
    draft = protocol_revise(
        study=study, acting_user=lab_manager, changes={"passage_limit": 5}, change_summary="allow P5"
    )
    with pytest.raises(DomainError, match="Your role does not allow you to approve protocol versions"):
        _approve(draft, qa_officer, password)
    draft.refresh_from_db()
    assert draft.status == ProtocolStatus.DRAFT


@pytest.mark.requirement("CFR11.10f")
def test_an_approved_version_cannot_be_approved_again(study, lab_manager, password):
    with pytest.raises(DomainError, match="cannot be approved"):
        _approve(protocol_in_force(study), lab_manager, password)
