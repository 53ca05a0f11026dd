"""The subject's timeline from aspirate to infusion, the product's end when it is not infused, and
transport limits read from the protocol."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from lims.errors import DomainError
from lims.labels import label_payload
from manufacturing.models import ProductStatus
from manufacturing.services.infusion import Handover, product_dispose, product_issue, product_receive_at_ward
from manufacturing.timeline import subject_timeline
from samples.models import ProtocolVersion
from tests.manufacturing.helpers import infused

pytestmark = pytest.mark.requirement("CFR1271.290")


# Timeline


def test_the_timeline_runs_from_screening_through_the_aspirate_and_release_to_the_infusion(
    at_ward, clinician, second_clinician, password
):
    infused(at_ward, clinician, second_clinician, password)
    events = subject_timeline(at_ward.batch.subject)
    whats = [e.what for e in events]

    def first(text: str) -> int:
        return next(i for i, what in enumerate(whats) if text in what)

    milestones = [
        "collected",
        "Received and accepted",
        "Isolated",
        "In culture",
        "Harvested",
        "Released by QA",
        "Formulated",
        "Dose calculated",
        "Dose verified",
        "handed over: Olivia Operator → Hamid",
        "handed over: Hamid → Clara Clinician",
        "Bedside check passed",
        "Infusion of",
        "Infusion ended",
    ]
    positions = [first(m) for m in milestones]
    assert positions == sorted(positions), list(zip(milestones, positions, strict=True))
    assert {"RAMSC-001: Enrolled (eligibility confirmed)", "PB-RAMSC-001-B1: Infused"} <= set(whats)
    assert [e.at for e in events] == sorted(e.at for e in events)
    released = events[first("Released by QA")]
    assert (released.phase, released.who) == ("Release", "Quentin Second")
    assert not any(e.alert for e in events)


def test_a_hard_stop_at_the_bedside_is_an_alert_on_the_timeline(at_ward, clinician, password):
    from manufacturing.services.infusion import bedside_verify
    from tests.manufacturing.test_infusion import _witness

    with pytest.raises(DomainError):
        bedside_verify(
            wristband_payload=label_payload(f"WB-{at_ward.batch.subject.code}"),
            bag_payload=label_payload(at_ward.code),
            acting_user=clinician,
            second_clinician=_witness(clinician, password),
        )
    stop = next(e for e in subject_timeline(at_ward.batch.subject) if e.phase == "Bedside")
    assert stop.alert
    assert stop.what == "HARD STOP at the bedside"
    assert "the same clinician cannot be both checkers" in stop.detail


def test_the_timeline_page_shows_the_plot_and_every_event_in_a_fixed_number_of_queries(
    client, at_ward, clinician, second_clinician, password
):
    subject = at_ward.batch.subject
    url = reverse("product:subject-timeline", args=[subject.code])
    client.force_login(clinician)
    with CaptureQueriesContext(connection) as before:
        assert client.get(url).status_code == 200
    infused(at_ward, clinician, second_clinician, password)
    with CaptureQueriesContext(connection) as after:
        response = client.get(url)
    page = response.content.decode()
    assert 'class="timeline-plot"' in page
    assert page.count("<tr") == len(subject_timeline(subject)) + 1
    assert "Infusion ended: 9.1 mL infused" in page
    assert len(after) == len(before)


def test_the_timeline_is_refused_to_an_outsider(client, outsider, at_ward):
    client.force_login(outsider)
    url = reverse("product:subject-timeline", args=[at_ward.batch.subject.code])
    assert client.get(url).status_code == 403


# Disposition


def test_an_operator_destroys_a_product_with_the_reason_on_the_page(client, operator, formulated):
    client.force_login(operator)
    url = reverse("product:dispose", args=[formulated.code])
    assert client.get(url).status_code == 200
    response = client.post(url, {"disposition": "destroyed", "reason": "bag punctured during formulation"})
    assert response.status_code == 302
    formulated.refresh_from_db()
    assert (formulated.status, formulated.status_reason) == (
        ProductStatus.DESTROYED,
        "bag punctured during formulation",
    )
    assert formulated.history.latest().history_change_reason == "bag punctured during formulation"
    page = client.get(reverse("product:detail", args=[formulated.code])).content.decode()
    assert "bag punctured during formulation" in page
    assert 'id="dispose-link"' not in page


def test_a_disposition_without_a_reason_writes_nothing(client, operator, formulated):
    client.force_login(operator)
    response = client.post(reverse("product:dispose", args=[formulated.code]), {"disposition": "destroyed"})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    formulated.refresh_from_db()
    assert formulated.status == ProductStatus.FORMULATED


def test_an_infused_product_cannot_be_destroyed(at_ward, operator, clinician, second_clinician, password):
    infused(at_ward, clinician, second_clinician, password)
    with pytest.raises(DomainError, match="is infused and cannot be destroyed"):
        product_dispose(product=at_ward, acting_user=operator, disposition="destroyed", reason="tidying up")


def test_a_returned_product_may_be_issued_again(at_ward, operator):
    returned = product_dispose(
        product=at_ward, acting_user=operator, disposition="returned", reason="infusion postponed by a day"
    )
    assert returned.status == ProductStatus.RETURNED
    issued = product_issue(
        product=returned, acting_user=operator, handover=Handover(courier="Hamid", temperature_c="5")
    )
    assert issued.status == ProductStatus.ISSUED


def test_a_clinician_cannot_dispose_of_a_product(client, clinician, formulated):
    client.force_login(clinician)
    response = client.post(
        reverse("product:dispose", args=[formulated.code]), {"disposition": "destroyed", "reason": "x"}
    )
    assert response.status_code == 403
    formulated.refresh_from_db()
    assert formulated.status == ProductStatus.FORMULATED


# Transport limits come from the protocol


def _receive(product, clinician, *, temperature: str, at: dt.datetime | None = None):
    return product_receive_at_ward(
        product=product,
        acting_user=clinician,
        scanned_payload=label_payload(product.code),
        handover=Handover(courier="Hamid", temperature_c=temperature, at=at),
        ward="Rheumatology ward",
    )


def test_transport_limits_are_the_protocols_and_are_flagged_before_infusion(
    client, formulated, operator, clinician, time_machine
):
    ProtocolVersion.objects.filter(pk=formulated.batch.protocol_id).update(
        product_transport_max_hours=Decimal("1.0"), product_storage_min_c=Decimal("4.0")
    )
    product_issue(product=formulated, acting_user=operator, handover=Handover(courier="Hamid", temperature_c="5"))
    time_machine.move_to(timezone.now() + dt.timedelta(minutes=75))
    received = _receive(formulated, clinician, temperature="3")
    assert received.transport_flags == "transport took 1.3 h (limit 1 h); received at 3 °C (limits 4–8 °C)"
    client.force_login(clinician)
    page = client.get(reverse("product:detail", args=[received.code])).content.decode()
    assert "transport took 1.3 h (limit 1 h)" in page


def test_a_transport_inside_the_protocols_limits_is_not_flagged(formulated, operator, clinician):
    product_issue(product=formulated, acting_user=operator, handover=Handover(courier="Hamid", temperature_c="5"))
    assert _receive(formulated, clinician, temperature="8").transport_flags == ""
    assert formulated.batch.protocol.product_transport_max_hours == Decimal("2.0")
