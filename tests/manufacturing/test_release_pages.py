"""The QC and QA pages and QA's release review in the admin: the right role succeeds (and the history names
them), others are refused and nothing changes, refusals are shown with HTTP 400 and write nothing.

The Batch admin lives in manufacturing/admin.py, which is not this module's to change. So this module is
its own URLconf (``pytest.mark.urls``): the project's URLs, with ``/admin/`` served by a throwaway
``AdminSite`` on which a Batch admin built from ``BatchReleaseAdminMixin`` is registered — exactly the
class the real admin declares once it inherits the mixin.
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import path, reverse
from django.utils import timezone

from lims import urls as project_urls
from lims.admin import ReadOnlyAuditedAdmin
from lims.models import Deviation, DeviationStatus, SignatureFailure
from lims.signatures import signatures_for
from manufacturing.models import (
    Batch,
    BatchStatus,
    DeviationClosure,
    EmReading,
    ProcessingSession,
    QcFlag,
    QcResult,
    ResultStatus,
    Specification,
    SpecStatus,
)
from manufacturing.release_admin import BatchReleaseAdminMixin
from manufacturing.services.release import (
    ResultEntry,
    batch_start_release_testing,
    processing_session_open,
    qc_result_record,
    specification_create,
)
from samples.models import Study
from tests.manufacturing.helpers import (
    accepted_aspirate,
    approved_specification,
    enter_passing_results,
    harvested_batch,
    started_batch,
)


class BatchAdmin(BatchReleaseAdminMixin, ReadOnlyAuditedAdmin):
    """What manufacturing/admin.py's BatchAdmin becomes once it inherits the mixin."""


release_admin_site = admin.AdminSite(name="admin")
release_admin_site.register(Batch, BatchAdmin)
urlpatterns = [
    path("admin/", release_admin_site.urls),
    *(pattern for pattern in project_urls.urlpatterns if getattr(pattern, "namespace", None) != "admin"),
]

pytestmark = pytest.mark.urls(__name__)


# --- Arrangement -----------------------------------------------------------------------------------------


@pytest.fixture
def second_qa(db):
    """A QA officer who took no part in making the batch: the one who may sign its release."""
    from lims.roles import QA
    from tests.factories import UserFactory

    return UserFactory(username="quentin", first_name="Quentin", last_name="Second", role=QA, is_staff=True)


@pytest.fixture
def testing_batch(study, batch, operator, qa_officer, password, media_lots):
    approved_specification(study, qa_officer, password)
    harvested_batch(batch, operator, media_lots)
    return batch_start_release_testing(batch=batch, acting_user=operator)


def staff(user):
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def criterion(batch, attribute):
    return batch.specification.criteria.get(attribute=attribute)


def enter(batch, attribute, user, value="", unit="%", outcome=""):
    return qc_result_record(
        batch=batch,
        criterion=criterion(batch, attribute),
        acting_user=user,
        entry=ResultEntry(value=value, unit=unit if value else "", outcome=outcome, analyst="Q. C. Analyst"),
    )


def signed(user, password, reason="reviewed and signed", **extra):
    return {"username": user.username, "password": password, "reason": reason, **extra}


def text(response) -> str:
    return response.content.decode()


def latest_history(model_instance):
    return type(model_instance).history.filter(id=model_instance.pk).order_by("-history_date", "-history_id").first()


def assert_login_redirect(response, login_url="/accounts/login/"):
    assert response.status_code == 302
    assert response["Location"].startswith(login_url)


# --- Who may use which page: outsiders are refused, anonymous visitors sent to log in ----------------------

PAGES = [
    "spec-draft",
    "spec-approve",
    "start-testing",
    "results",
    "retest",
    "invalidate",
    "deviation-close",
    "session-new",
    "em-reading-new",
]


@pytest.fixture
def page_urls(study, testing_batch, operator, qa_officer):
    oos = enter(testing_batch, "CD73", operator, "90")
    draft = specification_create(
        study=study,
        acting_user=qa_officer,
        criteria=[{"attribute": "Viability", "comparator": "gte", "limit": "70", "unit": "%"}],
        change_summary="v2",
    )
    session = processing_session_open(
        acting_user=operator,
        room="Cleanroom 1",
        cabinet="BSC-A",
        started_at=timezone.now(),
        operators="Olivia Operator",
        batches=[testing_batch],
    )
    return {
        "spec-draft": reverse("release:spec-draft", args=[study.code]),
        "spec-approve": reverse("release:spec-approve", args=[draft.pk]),
        "start-testing": reverse("release:start-testing", args=[testing_batch.lot_number]),
        "results": reverse("release:results", args=[testing_batch.lot_number]),
        "retest": reverse("release:retest", args=[oos.pk]),
        "invalidate": reverse("release:invalidate", args=[oos.pk]),
        "deviation-close": reverse("release:deviation-close", args=[oos.investigation.code]),
        "session-new": reverse("release:session-new"),
        "em-reading-new": reverse("release:em-reading-new", args=[session.pk]),
    }


def _record_counts():
    return (
        Specification.objects.count(),
        Specification.objects.filter(status=SpecStatus.APPROVED).count(),
        Batch.objects.filter(status=BatchStatus.RELEASE_TESTING).count(),
        QcResult.objects.count(),
        QcResult.objects.filter(status=ResultStatus.INVALIDATED).count(),
        Deviation.objects.filter(status=DeviationStatus.CLOSED).count(),
        ProcessingSession.objects.count(),
        EmReading.objects.count(),
    )


@pytest.mark.requirement("CFR11.10g", "ANNEX11.12")
@pytest.mark.parametrize("page", PAGES)
def test_an_outsider_is_refused_every_qc_and_qa_page_and_nothing_changes(client, page, page_urls, outsider, password):
    client.force_login(outsider)
    before = _record_counts()
    assert client.get(page_urls[page]).status_code == 403
    response = client.post(page_urls[page], {**signed(outsider, password), "change_summary": "x", "value": "1"})
    assert response.status_code == 403
    assert _record_counts() == before


@pytest.mark.parametrize("page", PAGES)
def test_an_anonymous_visitor_is_sent_to_log_in_and_nothing_changes(client, page, page_urls):
    before = _record_counts()
    assert_login_redirect(client.get(page_urls[page]))
    assert_login_redirect(client.post(page_urls[page], {"change_summary": "x"}))
    assert _record_counts() == before


def test_every_page_opens_for_its_role(client, page_urls, study, testing_batch, operator, second_qa):
    spec = testing_batch.specification
    reading_pages = [
        reverse("release:index"),
        reverse("release:spec-list", args=[study.code]),
        reverse("release:spec-detail", args=[spec.pk]),
        reverse("release:batch", args=[testing_batch.lot_number]),
        reverse("release:deviation-list"),
        page_urls["em-reading-new"].replace("readings/new/", ""),
    ]
    client.force_login(second_qa)
    for url in [
        *reading_pages,
        *(page_urls[p] for p in ("spec-draft", "spec-approve", "invalidate", "deviation-close")),
    ]:
        assert client.get(url).status_code == 200, url
    client.force_login(operator)
    for url in (page_urls[p] for p in ("start-testing", "results", "retest", "session-new", "em-reading-new")):
        assert client.get(url).status_code == 200, url


@pytest.mark.requirement("CFR11.10g")
def test_an_operator_may_not_sign_qa_pages(client, page_urls, operator, password):
    client.force_login(operator)
    for page in ("spec-draft", "spec-approve", "invalidate", "deviation-close"):
        assert client.post(page_urls[page], signed(operator, password)).status_code == 403, page


# --- Specifications ---------------------------------------------------------------------------------------


def test_qa_drafts_a_specification_from_the_reference_table(client, study, qa_officer):
    client.force_login(qa_officer)
    response = client.post(
        reverse("release:spec-draft", args=[study.code]),
        {"change_summary": "ISCT-based release specification", "allows_conditional_release": "on"},
    )
    spec = Specification.objects.get(study=study)
    assert response.status_code == 302
    assert response["Location"] == reverse("release:spec-detail", args=[spec.pk])
    assert (spec.version, spec.status, spec.allows_conditional_release) == (1, SpecStatus.DRAFT, True)
    assert set(spec.criteria.values_list("attribute", flat=True)) >= {"CD73", "Sterility", "Endotoxin", "Passage"}
    history = latest_history(spec)
    assert (history.history_user, history.history_change_reason) == (qa_officer, "ISCT-based release specification")


def test_drafting_for_a_study_without_a_reference_table_is_refused_and_writes_nothing(client, qa_officer):
    other = Study.objects.create(
        code="OTHER", registry_id="NCT00000000", title="Another study", phase="1", sponsor="X", planned_enrolment=5
    )
    client.force_login(qa_officer)
    response = client.post(reverse("release:spec-draft", args=[other.code]), {"change_summary": "first"})
    assert response.status_code == 400
    assert "has no reference release table" in text(response)
    assert not Specification.objects.filter(study=other).exists()


@pytest.mark.requirement("ANNEX11.14")
def test_qa_approves_a_draft_with_a_signature(client, study, qa_officer, password):
    draft = specification_create(
        study=study,
        acting_user=qa_officer,
        criteria=[{"attribute": "Viability", "comparator": "gte", "limit": "70", "unit": "%"}],
        change_summary="v1",
    )
    client.force_login(qa_officer)
    response = client.post(reverse("release:spec-approve", args=[draft.pk]), signed(qa_officer, password))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == SpecStatus.APPROVED
    assert latest_history(draft).history_user == qa_officer
    [check] = signatures_for(draft)
    assert (check.signature.meaning, check.signature.signer, check.valid) == ("approved", qa_officer, True)


@pytest.mark.requirement("CFR11.200")
def test_approving_with_a_wrong_password_approves_nothing_and_is_recorded(client, study, qa_officer):
    draft = specification_create(
        study=study,
        acting_user=qa_officer,
        criteria=[{"attribute": "Viability", "comparator": "gte", "limit": "70", "unit": "%"}],
        change_summary="v1",
    )
    client.force_login(qa_officer)
    response = client.post(reverse("release:spec-approve", args=[draft.pk]), signed(qa_officer, "wrong-password"))
    assert response.status_code == 400
    assert "Wrong username or password" in text(response)
    draft.refresh_from_db()
    assert draft.status == SpecStatus.DRAFT
    assert SignatureFailure.objects.filter(username_entered=qa_officer.username).count() == 1


# --- Release testing and results -----------------------------------------------------------------------------


@pytest.fixture
def harvested(study, batch, operator, qa_officer, password, media_lots):
    return harvested_batch(batch, operator, media_lots)


def test_an_analyst_starts_release_testing_and_the_specification_is_frozen(
    client, harvested, study, operator, qa_officer, password
):
    spec = approved_specification(study, qa_officer, password)
    client.force_login(operator)
    response = client.post(reverse("release:start-testing", args=[harvested.lot_number]))
    assert response.status_code == 302
    harvested.refresh_from_db()
    assert (harvested.status, harvested.specification) == (BatchStatus.RELEASE_TESTING, spec)
    assert latest_history(harvested).history_user == operator


@pytest.mark.requirement("CFR11.10f")
def test_release_testing_without_an_approved_specification_is_refused(client, harvested, operator):
    client.force_login(operator)
    response = client.post(reverse("release:start-testing", args=[harvested.lot_number]))
    assert response.status_code == 400
    assert "no approved specification" in text(response)
    harvested.refresh_from_db()
    assert harvested.status == BatchStatus.HARVESTED


def row(batch, attribute, **values):
    pk = criterion(batch, attribute).pk
    data = {f"c{pk}_analyst": "Q. C. Analyst"}
    data.update({f"c{pk}_{name}": value for name, value in values.items()})
    return data


def test_the_results_sheet_saves_every_filled_row_with_its_stored_flag(client, testing_batch, operator):
    client.force_login(operator)
    data = {
        **row(testing_batch, "CD73", value="98.5", unit="%"),
        **row(testing_batch, "CD90", value="94", unit="%"),
        **row(testing_batch, "Endotoxin", value="<0.05", unit="EU/mL"),
        **row(testing_batch, "Sterility", outcome="no growth"),
    }
    response = client.post(reverse("release:results", args=[testing_batch.lot_number]), data, follow=True)
    assert response.status_code == 200
    flags = dict(testing_batch.qc_results.values_list("criterion__attribute", "flag"))
    assert flags == {
        "Passage": QcFlag.PASS,
        "CD73": QcFlag.PASS,
        "CD90": QcFlag.OOS,
        "Endotoxin": QcFlag.AT_DOSE,
        "Sterility": QcFlag.PASS,
    }
    endotoxin = testing_batch.qc_results.get(criterion__attribute="Endotoxin")
    assert (endotoxin.qualifier, endotoxin.display_value) == ("<", "<0.05 EU/mL")
    assert latest_history(endotoxin).history_user == operator
    page = text(response)
    assert "CD90 94 %: OUT OF SPECIFICATION" in page, "the OOS flag is said in words on the page"
    assert "investigation" in page


def test_one_refused_row_saves_none_of_the_sheet(client, testing_batch, operator):
    client.force_login(operator)
    before = QcResult.objects.count()
    data = {
        **row(testing_batch, "CD73", value="90", unit="%"),
        **row(testing_batch, "CD90", value="120", unit="%"),
    }
    response = client.post(reverse("release:results", args=[testing_batch.lot_number]), data)
    assert response.status_code == 400
    assert "a percentage is 0 to 100" in text(response)
    assert QcResult.objects.count() == before
    assert not Deviation.objects.exists(), "the OOS row before the refused one opened no investigation either"


def test_an_empty_sheet_is_refused(client, testing_batch, operator):
    client.force_login(operator)
    response = client.post(reverse("release:results", args=[testing_batch.lot_number]), {})
    assert response.status_code == 400
    assert "Fill in at least one result" in text(response)


def test_a_retest_is_linked_to_the_oos_result_which_keeps_its_flag(client, testing_batch, operator):
    oos = enter(testing_batch, "CD73", operator, "94.0")
    client.force_login(operator)
    data = row(testing_batch, "CD73", value="96.5", unit="%")
    response = client.post(reverse("release:retest", args=[oos.pk]), data)
    assert response.status_code == 302
    retest = QcResult.objects.get(retest_of=oos)
    assert (retest.flag, retest.investigation) == (QcFlag.PASS, oos.investigation)
    assert latest_history(retest).history_user == operator
    oos.refresh_from_db()
    assert (oos.flag, oos.status) == (QcFlag.OOS, ResultStatus.VALID)


def test_a_retest_of_a_passing_result_is_refused(client, testing_batch, operator):
    passing = enter(testing_batch, "CD73", operator, "98")
    client.force_login(operator)
    before = QcResult.objects.count()
    response = client.post(
        reverse("release:retest", args=[passing.pk]), row(testing_batch, "CD73", value="97", unit="%")
    )
    assert response.status_code == 400
    assert "A retest must follow an out-of-specification" in text(response)
    assert QcResult.objects.count() == before


def test_qa_invalidates_a_result_with_a_signature_and_its_flag_stays(
    client, testing_batch, operator, second_qa, password
):
    oos = enter(testing_batch, "CD73", operator, "94.0")
    client.force_login(second_qa)
    response = client.post(
        reverse("release:invalidate", args=[oos.pk]), signed(second_qa, password, reason="pipetting error proven")
    )
    assert response.status_code == 302
    oos.refresh_from_db()
    assert (oos.status, oos.flag, oos.status_reason) == (ResultStatus.INVALIDATED, QcFlag.OOS, "pipetting error proven")
    assert latest_history(oos).history_user == second_qa
    assert [c.signature.meaning for c in signatures_for(oos)] == ["reviewed"]


def test_invalidating_with_a_wrong_password_changes_nothing(client, testing_batch, operator, second_qa):
    oos = enter(testing_batch, "CD73", operator, "94.0")
    client.force_login(second_qa)
    response = client.post(reverse("release:invalidate", args=[oos.pk]), signed(second_qa, "nope"))
    assert response.status_code == 400
    assert "Wrong username or password" in text(response)
    oos.refresh_from_db()
    assert oos.status == ResultStatus.VALID
    assert SignatureFailure.objects.filter(username_entered=second_qa.username).count() == 1


# --- Deviations --------------------------------------------------------------------------------------------------


def test_the_deviation_list_filters_open_and_closed(client, testing_batch, operator, second_qa):
    oos = enter(testing_batch, "CD73", operator, "94.0")
    client.force_login(second_qa)
    assert oos.investigation.code in text(client.get(reverse("release:deviation-list") + "?status=open"))
    assert oos.investigation.code not in text(client.get(reverse("release:deviation-list") + "?status=closed"))
    client.force_login(operator)
    assert client.get(reverse("release:deviation-list")).status_code == 403


def test_qa_closes_a_deviation_with_classification_impact_action_and_signature(
    client, testing_batch, operator, second_qa, password
):
    deviation = enter(testing_batch, "CD73", operator, "94.0").investigation
    client.force_login(second_qa)
    data = {
        **signed(second_qa, password, reason="investigation complete"),
        "classification": "minor",
        "impact_assessment": "no product impact",
        "corrective_action": "gating SOP retraining",
        "meaning": "reviewed",
    }
    response = client.post(reverse("release:deviation-close", args=[deviation.code]), data)
    assert response.status_code == 302
    deviation.refresh_from_db()
    assert deviation.status == DeviationStatus.CLOSED
    closure = DeviationClosure.objects.get(deviation=deviation)
    assert (closure.classification, closure.closed_by) == ("minor", second_qa)
    assert latest_history(deviation).history_user == second_qa


def test_closing_a_closed_deviation_again_is_refused(client, testing_batch, operator, second_qa, password):
    deviation = enter(testing_batch, "CD73", operator, "94.0").investigation
    data = {
        **signed(second_qa, password),
        "classification": "minor",
        "impact_assessment": "none",
        "corrective_action": "none",
        "meaning": "reviewed",
    }
    client.force_login(second_qa)
    assert client.post(reverse("release:deviation-close", args=[deviation.code]), data).status_code == 302
    response = client.post(reverse("release:deviation-close", args=[deviation.code]), data)
    assert response.status_code == 400
    assert f"Deviation {deviation.code} is already closed" in text(response)
    assert DeviationClosure.objects.filter(deviation=deviation).count() == 1


# --- Processing sessions and EM ------------------------------------------------------------------------------------


def test_an_operator_records_a_session_with_its_batches(client, testing_batch, study, clinician, operator, password):
    in_culture = started_batch(accepted_aspirate(study, clinician, operator, password), operator)
    client.force_login(operator)
    response = client.post(
        reverse("release:session-new"),
        {
            "room": "Cleanroom 1",
            "cabinet": "BSC-A",
            "started_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
            "operators": "Olivia Operator",
            "batches": [in_culture.pk],
        },
    )
    session = ProcessingSession.objects.get()
    assert response.status_code == 302
    assert list(session.batches.all()) == [in_culture]
    assert latest_history(session).history_user == operator


def test_a_session_without_a_batch_is_refused(client, operator):
    client.force_login(operator)
    response = client.post(
        reverse("release:session-new"),
        {"room": "Cleanroom 1", "cabinet": "BSC-A", "started_at": "2026-01-05T09:00", "operators": "Olivia"},
    )
    assert response.status_code == 400
    assert "This field is required" in text(response)
    assert not ProcessingSession.objects.exists()


@pytest.fixture
def session(testing_batch, operator):
    return processing_session_open(
        acting_user=operator,
        room="Cleanroom 1",
        cabinet="BSC-A",
        started_at=timezone.now(),
        operators="Olivia Operator",
        batches=[testing_batch],
    )


def test_a_grade_a_colony_is_an_excursion_that_opens_a_deviation_on_the_batch(client, session, testing_batch, operator):
    client.force_login(operator)
    response = client.post(
        reverse("release:em-reading-new", args=[session.pk]),
        {"grade": "A", "kind": "settle", "location": "cabinet work zone", "value": "1"},
        follow=True,
    )
    reading = EmReading.objects.get()
    assert reading.excursion
    assert latest_history(reading).history_user == operator
    assert "EXCURSION" in text(response)
    deviation = Deviation.objects.get(source="environment")
    assert deviation.record == testing_batch


def test_a_negative_count_is_refused_and_nothing_recorded(client, session, operator):
    client.force_login(operator)
    response = client.post(
        reverse("release:em-reading-new", args=[session.pk]),
        {"grade": "B", "kind": "settle", "location": "floor", "value": "-1"},
    )
    assert response.status_code == 400
    assert not EmReading.objects.exists()


# --- The batch release page and its documents -------------------------------------------------------------------


def test_the_batch_release_page_shows_flags_in_words_blockers_and_document_links(client, testing_batch, operator):
    enter(testing_batch, "CD73", operator, "94.0")
    client.force_login(operator)
    page = text(client.get(reverse("release:batch", args=[testing_batch.lot_number])))
    assert "OUT OF SPECIFICATION" in page
    assert "MISSING" in page
    assert "Release is refused while" in page
    assert reverse("release:certificate", args=[testing_batch.lot_number]) in page
    assert reverse("release:batch-record", args=[testing_batch.lot_number]) in page


def test_the_documents_are_pdfs_for_staff_and_refused_to_outsiders(client, testing_batch, operator, outsider):
    client.force_login(operator)
    for name in ("release:certificate", "release:batch-record"):
        response = client.get(reverse(name, args=[testing_batch.lot_number]))
        assert (response.status_code, response["Content-Type"]) == (200, "application/pdf")
        assert response.content.startswith(b"%PDF-")
    client.force_login(outsider)
    assert client.get(reverse("release:certificate", args=[testing_batch.lot_number])).status_code == 403


# --- QA's release review and decision in the admin ---------------------------------------------------------------


def review_url(batch):
    return reverse("admin:manufacturing_batch_release_review", args=[batch.pk])


def decide_url(batch, decision="released"):
    return reverse("admin:manufacturing_batch_release_decide", args=[batch.pk, decision])


def test_the_change_page_links_to_the_release_review(client, testing_batch, second_qa):
    client.force_login(second_qa)
    response = client.get(reverse("admin:manufacturing_batch_change", args=[testing_batch.pk]))
    assert response.status_code == 200
    assert review_url(testing_batch) in text(response)


@pytest.mark.requirement("ANNEX11.9")
def test_the_review_shows_every_criterion_flags_blockers_changes_and_who_made_the_batch(
    client, testing_batch, operator, second_qa
):
    enter_passing_results(testing_batch, operator, skip=("CD90", "Mycoplasma"))
    oos = enter(testing_batch, "CD90", operator, "93.0")
    viability = testing_batch.qc_results.get(criterion__attribute="Viability")
    viability.analyst = "A. N. Other"
    from lims.audit import save_audited

    save_audited(viability, acting_user=operator, reason="analyst name corrected", update_fields=["analyst"])
    client.force_login(second_qa)
    response = client.get(review_url(testing_batch))
    assert response.status_code == 200
    page = text(response)
    for attribute in testing_batch.specification.criteria.values_list("attribute", flat=True):
        assert attribute in page
    assert "OUT OF SPECIFICATION" in page
    assert "MISSING" in page
    assert "Mycoplasma: no valid result" in page
    assert f"open deviation(s): {oos.investigation.code}" in page
    assert "VALUE CHANGED" in page
    assert "analyst name corrected" in page
    assert "Olivia Operator (olivia)" in page, "the manufacturing actors are named"
    assert "Release</a>" in page
    assert "Reject</a>" in page
    assert "Conditional release" not in page, "the specification does not allow a conditional release"


def test_the_review_reads_a_fixed_number_of_queries_whatever_the_results(client, testing_batch, operator, second_qa):
    enter(testing_batch, "CD73", operator, "94.0")
    client.force_login(second_qa)
    with CaptureQueriesContext(connection) as first:
        client.get(review_url(testing_batch))
    enter_passing_results(testing_batch, operator, skip=("CD73", "CD90"))
    enter(testing_batch, "CD90", operator, "90.0")
    with CaptureQueriesContext(connection) as second:
        client.get(review_url(testing_batch))
    assert len(second) == len(first)


@pytest.mark.requirement("CFR11.10g")
def test_a_staff_member_without_the_qa_permission_sees_no_decision_and_cannot_decide(
    client, testing_batch, operator, password
):
    client.force_login(staff(operator))
    assert client.get(review_url(testing_batch)).status_code == 200
    assert "decide-released" not in text(client.get(review_url(testing_batch)))
    response = client.post(decide_url(testing_batch), signed(operator, password))
    assert response.status_code == 403
    testing_batch.refresh_from_db()
    assert testing_batch.status == BatchStatus.RELEASE_TESTING


def test_outsiders_are_refused_the_review_and_the_decision(client, testing_batch, outsider, password):
    client.force_login(outsider)
    assert_login_redirect(client.get(review_url(testing_batch)), "/admin/login/")
    client.force_login(staff(outsider))
    assert client.get(review_url(testing_batch)).status_code == 403
    assert client.post(decide_url(testing_batch), signed(outsider, password)).status_code == 403
    client.logout()
    assert_login_redirect(client.post(decide_url(testing_batch), signed(outsider, password)), "/admin/login/")
    testing_batch.refresh_from_db()
    assert testing_batch.status == BatchStatus.RELEASE_TESTING


@pytest.mark.requirement("CFR11.50", "CFR11.70", "ANNEX11.14")
def test_qa_releases_a_complete_batch_with_a_signature(client, testing_batch, operator, second_qa, password):
    enter_passing_results(testing_batch, operator)
    client.force_login(second_qa)
    assert "Sign: released" in text(client.get(decide_url(testing_batch)))
    response = client.post(decide_url(testing_batch), signed(second_qa, password, reason="all criteria met"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:manufacturing_batch_change", args=[testing_batch.pk])
    testing_batch.refresh_from_db()
    assert testing_batch.status == BatchStatus.RELEASED
    history = latest_history(testing_batch)
    assert (history.history_user, history.history_change_reason) == (second_qa, "all criteria met")
    [check] = signatures_for(testing_batch)
    assert (check.signature.signer, check.signature.meaning, check.valid) == (second_qa, "released", True)


@pytest.mark.requirement("CFR11.200")
def test_a_wrong_password_releases_nothing_and_the_failure_is_recorded(client, testing_batch, operator, second_qa):
    enter_passing_results(testing_batch, operator)
    client.force_login(second_qa)
    response = client.post(decide_url(testing_batch), signed(second_qa, "not-the-password"))
    assert response.status_code == 400
    assert "Wrong username or password" in text(response)
    testing_batch.refresh_from_db()
    assert testing_batch.status == BatchStatus.RELEASE_TESTING
    assert signatures_for(testing_batch) == []
    failure = SignatureFailure.objects.get()
    assert (failure.username_entered, failure.attempted_by) == (second_qa.username, second_qa)


@pytest.mark.requirement("CFR11.10g")
def test_a_qa_officer_who_made_the_batch_may_not_release_it(
    client, study, clinician, operator, qa_officer, password, media_lots
):
    from lims.roles import OPERATOR, QA
    from tests.factories import UserFactory

    # A QA officer who also works in the cleanroom, and started this batch.
    maker = UserFactory(username="mira", first_name="Mira", last_name="Maker", role=QA, is_staff=True)
    maker.groups.add(Group.objects.get(name=OPERATOR))
    approved_specification(study, qa_officer, password)
    made = started_batch(accepted_aspirate(study, clinician, operator, password), maker)
    harvested_batch(made, operator, media_lots)
    made = batch_start_release_testing(batch=made, acting_user=operator)
    enter_passing_results(made, operator)

    client.force_login(maker)
    response = client.post(decide_url(made), signed(maker, password))
    assert response.status_code == 400
    assert "Mira Maker took part in making batch" in text(response)
    assert "another QA officer must sign" in text(response)
    made.refresh_from_db()
    assert made.status == BatchStatus.RELEASE_TESTING
    assert signatures_for(made) == []


def test_an_oos_batch_is_refused_with_every_reason_listed(client, testing_batch, operator, second_qa, password):
    enter_passing_results(testing_batch, operator, skip=("CD73", "Mycoplasma"))
    oos = enter(testing_batch, "CD73", operator, "94.0")
    client.force_login(second_qa)
    response = client.post(decide_url(testing_batch), signed(second_qa, password))
    assert response.status_code == 400
    page = text(response)
    assert "Release refused" in page
    assert "<li>Mycoplasma: no valid result</li>" in page
    assert "<li>CD73: out of specification (94 %)</li>" in page
    assert f"<li>open deviation(s): {oos.investigation.code}</li>" in page
    assert "Nothing was changed" in page
    testing_batch.refresh_from_db()
    assert testing_batch.status == BatchStatus.RELEASE_TESTING
    assert signatures_for(testing_batch) == []


def test_qa_rejects_an_oos_batch(client, testing_batch, operator, second_qa, password):
    enter(testing_batch, "CD73", operator, "90.0")
    client.force_login(second_qa)
    response = client.post(decide_url(testing_batch, "rejected"), signed(second_qa, password, reason="CD73 OOS"))
    assert response.status_code == 302
    testing_batch.refresh_from_db()
    assert testing_batch.status == BatchStatus.REJECTED
    assert [c.signature.meaning for c in signatures_for(testing_batch)] == ["rejected"]


def test_a_conditional_release_needs_the_specification_to_allow_it_and_a_justification(
    client, study, batch, operator, qa_officer, second_qa, password, media_lots
):
    approved_specification(study, qa_officer, password, conditional=True)
    harvested_batch(batch, operator, media_lots)
    testing = batch_start_release_testing(batch=batch, acting_user=operator)
    enter_passing_results(testing, operator, skip=("Sterility",))
    client.force_login(second_qa)
    assert "Conditional release pending sterility" in text(client.get(review_url(testing)))

    refused = client.post(decide_url(testing, "conditional"), signed(second_qa, password))
    assert refused.status_code == 400
    assert "This field is required" in text(refused)
    response = client.post(
        decide_url(testing, "conditional"),
        signed(second_qa, password, justification="patient's disease activity cannot wait 14 days"),
    )
    assert response.status_code == 302
    testing.refresh_from_db()
    assert testing.status == BatchStatus.CONDITIONALLY_RELEASED
    assert "justification: patient's disease activity" in latest_history(testing).history_change_reason


def test_an_unknown_decision_is_not_a_page(client, testing_batch, second_qa):
    client.force_login(second_qa)
    assert client.get(decide_url(testing_batch, "approve")).status_code == 404
