"""The Certificate of Analysis and the batch record: what they say, that they say it the same way twice,
and that a change after signing is printed on them."""

from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from lims.audit import save_audited
from lims.signatures import SignatureRequest
from manufacturing.documents import batch_dossier, batch_record_pdf, certificate_of_analysis_pdf
from manufacturing.models import BatchStatus, QcFlag
from manufacturing.services.release import (
    ResultEntry,
    batch_release_decide,
    batch_start_release_testing,
    deviation_close,
    qc_result_invalidate,
    qc_result_record,
)
from tests.manufacturing.helpers import approved_specification, enter_passing_results, harvested_batch


@pytest.fixture
def second_qa(db):
    from lims.roles import QA
    from tests.factories import UserFactory

    return UserFactory(username="quentin", first_name="Quentin", last_name="Second", role=QA)


@pytest.fixture
def testing_batch(study, batch, operator, qa_officer, password, media_lots):
    approved_specification(study, qa_officer, password)
    harvested_batch(batch, operator, media_lots)
    return batch_start_release_testing(batch=batch, acting_user=operator)


def sign(user, password, meaning="released", reason="all criteria met, deviations closed, audit trail reviewed"):
    return SignatureRequest(username=user.username, password=password, meaning=meaning, reason=reason)


def text_of(pdf: bytes) -> str:
    """The PDF's text with whitespace collapsed, so a table cell that wraps still reads as one phrase
    (a line that breaks after a hyphen, as in "re-/analysis", is joined back)."""
    reader = PdfReader(io.BytesIO(pdf))
    raw = "\n".join(page.extract_text() or "" for page in reader.pages)
    return " ".join(re.sub(r"-[ \t]*\n\s*", "-", raw).split())


@pytest.fixture
def released_batch(testing_batch, operator, second_qa, password):
    enter_passing_results(testing_batch, operator)
    return batch_release_decide(
        batch=testing_batch, acting_user=second_qa, decision=BatchStatus.RELEASED, signature=sign(second_qa, password)
    )


@pytest.mark.requirement("CFR11.50", "ANNEX11.14", "CFR1271.290")
def test_the_certificate_holds_every_criterion_result_flag_and_the_signature(released_batch, second_qa):
    text = text_of(certificate_of_analysis_pdf(released_batch))
    study = released_batch.subject.study
    for expected in (
        "Certificate of Analysis",
        "FOR AUTOLOGOUS USE ONLY",
        study.code,
        study.registry_id,
        released_batch.subject.code,
        released_batch.lot_number,
        "version 1",
        "Released by QA",
    ):
        assert expected in text
    for criterion in released_batch.specification.criteria.all():
        assert criterion.attribute in text
        if criterion.method:
            assert criterion.method in text
    for shown in ("98.5 %", "≥ 95 %", "≤ 2 %", "<0.05 EU/mL", "no growth", "not detected", "negative"):
        assert shown in text
    assert "PASS" in text
    assert "AT DOSE TIME" in text, "endotoxin is judged per patient at dose time"
    [check] = batch_dossier(released_batch).signatures
    assert second_qa.printed_name in text
    assert "Released" in text
    assert check.signature.signed_at.strftime("%Y-%m-%d %H:%M:%S") + " UTC" in text
    assert "intact" in text
    assert "The record changed after it was signed" not in text
    assert "Clara" not in text, "no person's name but the signers' and makers' ever reaches the CoA"


@pytest.mark.requirement("ANNEX11.8.2")
def test_an_oos_flag_survives_retest_invalidation_and_release_and_is_on_the_certificate(
    testing_batch, operator, second_qa, password
):
    enter_passing_results(testing_batch, operator, skip=("CD90",))
    criterion = testing_batch.specification.criteria.get(attribute="CD90")
    oos = qc_result_record(
        batch=testing_batch,
        criterion=criterion,
        acting_user=operator,
        entry=ResultEntry(value="93.0", unit="%", analyst="Q. C. Analyst"),
    )
    qc_result_record(
        batch=testing_batch,
        criterion=criterion,
        acting_user=operator,
        retest_of=oos,
        entry=ResultEntry(value="97.5", unit="%", analyst="Q. C. Analyst"),
    )
    qc_result_invalidate(
        result=oos,
        acting_user=second_qa,
        signature=sign(second_qa, password, meaning="reviewed", reason="gating error found on re-analysis"),
    )
    deviation_close(
        deviation=oos.investigation,
        acting_user=second_qa,
        classification="minor",
        impact_assessment="no product impact",
        corrective_action="gating SOP retraining",
        signature=sign(second_qa, password, meaning="reviewed", reason="investigation complete"),
    )
    released = batch_release_decide(
        batch=testing_batch, acting_user=second_qa, decision=BatchStatus.RELEASED, signature=sign(second_qa, password)
    )
    oos.refresh_from_db()
    assert (released.status, oos.flag) == (BatchStatus.RELEASED, QcFlag.OOS)

    text = text_of(certificate_of_analysis_pdf(released))
    assert "1. 93 % OUT OF SPECIFICATION INVALIDATED by QA" in text
    assert "gating error found on re-analysis" in text
    assert "2. 97.5 % PASS valid, retest of result 1" in text
    assert oos.investigation.code in text


@pytest.mark.requirement("ANNEX11.7")
def test_the_same_records_give_the_same_document_byte_for_byte(released_batch):
    first = certificate_of_analysis_pdf(released_batch)
    second = certificate_of_analysis_pdf(released_batch)
    assert first == second
    assert batch_record_pdf(released_batch) == batch_record_pdf(released_batch)


@pytest.mark.requirement("ANNEX11.8.2", "CFR11.70")
def test_a_certificate_printed_after_a_post_signature_change_says_so(released_batch, operator):
    before = certificate_of_analysis_pdf(released_batch)
    result = released_batch.qc_results.get(criterion__attribute="Viability")
    result.numeric_value = 71
    save_audited(result, acting_user=operator, reason="transcription corrected", update_fields=["numeric_value"])

    after = certificate_of_analysis_pdf(released_batch)
    assert after != before
    text = text_of(after)
    assert "The record changed after it was signed" in text
    assert "71 %" in text


def test_a_certificate_of_a_batch_not_yet_released_says_it_is_not_a_release(testing_batch, operator):
    enter_passing_results(testing_batch, operator, skip=("Mycoplasma",))
    text = text_of(certificate_of_analysis_pdf(testing_batch))
    assert "NOT RELEASED" in text
    assert "Not signed" in text
    assert "Mycoplasma" in text
    assert "NO RESULT missing" in text


@pytest.mark.requirement("ANNEX11.8.2", "ANNEX11.9", "CFR1271.290")
def test_the_batch_record_lists_every_step_lot_result_and_the_changes_after_first_entry(
    released_batch, operator, media_lots
):
    result = released_batch.qc_results.get(criterion__attribute="Viability")
    result.numeric_value = 71
    save_audited(result, acting_user=operator, reason="transcription corrected", update_fields=["numeric_value"])

    text = text_of(batch_record_pdf(released_batch))
    for expected in (
        "Batch record",
        "FOR AUTOLOGOUS USE ONLY",
        "Batch started",
        "Seeded",
        "Harvested",
        "Batch harvest (pooled)",
        "Olivia Operator",
        "Quentin Second",
        "CD73",
        "PASS",
        "Audit-trail review: changes after first entry",
        "VALUE CHANGED",
        "transcription corrected",
        "94 → 71",
        "The record changed after it was signed",
    ):
        assert expected in text, expected
    for flask in released_batch.flasks.all():
        assert flask.code in text
    for lot in media_lots:
        assert lot.lot_number in text
        assert lot.code in text
