"""Who may do what through the API: the pages' permissions, narrowed further by a token's role."""

from __future__ import annotations

import pytest
from django.test import Client

from api.models import ApiToken
from api.tokens import api_token_issue, api_token_revoke, hash_token
from lims.errors import DomainError
from lims.labels import label_payload
from lims.models import ScanAttempt
from lims.roles import CLINICIAN, OPERATOR, QA
from manufacturing.models import BatchStatus, CultureEvent
from tests.api.helpers import Api, stored_token, token_for

WRITES = [
    ("/api/scans/", "scan labels"),
    ("/api/labels/{flask}/custody/", "record a custody hand-over"),
    ("/api/flasks/{flask}/feed/", "record culture steps"),
    ("/api/flasks/{flask}/observe/", "record culture steps"),
    ("/api/flasks/{flask}/passage/", "record culture steps"),
    ("/api/flasks/{flask}/discard/", "record culture steps"),
    ("/api/reagent-lots/", "receive reagent lots"),
    ("/api/reagent-lots/{lot}/release/", "release reagent lots"),
    ("/api/reagent-lots/{lot}/recall/", "recall reagent lots"),
    ("/api/batches/{batch}/qc-results/", "enter QC results"),
    ("/api/batches/{batch}/decision/", "release or reject batches"),
    ("/api/aspirates/{aspirate}/receive/", "receive aspirates"),
    ("/api/products/NONE/doses/", "calculate doses"),
    ("/api/doses/1/verify/", "verify doses"),
]


@pytest.mark.requirement("CFR11.10g")
@pytest.mark.parametrize(("path", "doing"), WRITES)
def test_an_outsider_is_refused_every_step_and_nothing_changes(as_outsider, flask, media_lots, path, doing):
    target = path.format(
        flask=flask.code, lot=media_lots[0].code, batch=flask.batch.lot_number, aspirate=flask.batch.aspirate.code
    )
    scans, events = ScanAttempt.objects.count(), CultureEvent.objects.count()
    response = as_outsider.post(target, {"payload": label_payload(flask.code)})
    assert response.status_code == 403
    assert response.json() == {
        "detail": f"Your role does not allow you to {doing}.",
        "code": "forbidden",
        "reasons": [f"Your role does not allow you to {doing}."],
    }
    assert (ScanAttempt.objects.count(), CultureEvent.objects.count()) == (scans, events)


@pytest.mark.requirement("ANNEX11.12")
def test_without_credentials_the_api_answers_401_with_the_bearer_challenge(db):
    response = Api().get("/api/batches/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.requirement("CFR11.10g")
def test_a_clinicians_token_cannot_release_a_batch(as_clinician, clinician, testing_batch, password):
    body = {
        "decision": "released",
        "signature": {"username": clinician.username, "password": password, "meaning": "released", "reason": "x"},
    }
    response = as_clinician.post(f"/api/batches/{testing_batch.lot_number}/decision/", body)
    assert response.status_code == 403
    assert response.json()["detail"] == "Your role does not allow you to release or reject batches."
    testing_batch.refresh_from_db()
    assert testing_batch.status == BatchStatus.RELEASE_TESTING


def test_a_qa_officers_token_scoped_to_the_clinician_role_cannot_release_either(qa_officer, testing_batch, password):
    from django.contrib.auth.models import Group

    qa_officer.groups.add(Group.objects.get(name=CLINICIAN))
    as_qa_clinician = Api(token_for(qa_officer, CLINICIAN))
    body = {
        "decision": "released",
        "signature": {"username": qa_officer.username, "password": password, "meaning": "released", "reason": "x"},
    }
    response = as_qa_clinician.post(f"/api/batches/{testing_batch.lot_number}/decision/", body)
    assert response.status_code == 403
    assert qa_officer.has_perm("manufacturing.decide_release"), "the person may, the token may not"


@pytest.mark.requirement("CFR11.10g")
def test_a_token_narrowed_by_its_role_refuses_even_inside_the_service(operator, flask, media_lots):
    """The scope reaches the services' own require_permission, not only the API's permission class."""
    from manufacturing.services import culture

    user = stored_token(token_for(operator, OPERATOR)).owner
    user._stroma_token_role = QA  # what the authentication does for a QA-scoped token
    with pytest.raises(DomainError, match=r"Your role does not allow you to record culture steps\."):
        culture.flask_feed(flask=flask, acting_user=user, volume_ml="15", lots=media_lots)


@pytest.mark.requirement("CFR11.300")
def test_a_revoked_token_is_refused(operator, flask):
    raw = token_for(operator, OPERATOR)
    api = Api(raw)
    assert api.get(f"/api/flasks/{flask.code}/").status_code == 200
    api_token_revoke(token=stored_token(raw), acting_user=operator, reason="tablet lost")
    response = api.get(f"/api/flasks/{flask.code}/")
    assert response.status_code == 401
    assert "was revoked" in response.json()["detail"]
    assert stored_token(raw).history.latest().history_change_reason == "API token revoked: tablet lost"


@pytest.mark.requirement("CFR11.300")
def test_an_unknown_token_is_refused(db):
    response = Api("stroma_not-a-real-token").get("/api/studies/")
    assert (response.status_code, response.json()["detail"]) == (401, "This API token is not known.")


@pytest.mark.requirement("CFR11.300", "ANNEX11.12")
def test_only_the_tokens_hash_is_stored(operator):
    issued = api_token_issue(owner=operator, role=OPERATOR, name="tablet", acting_user=operator)
    row = ApiToken.objects.get()
    assert row.key_hash == hash_token(issued.raw)
    assert issued.raw not in str(ApiToken.objects.values().get())
    assert row.history.get().history_user == operator


@pytest.mark.requirement("CFR11.10g", "CFR11.300")
def test_a_token_cannot_carry_a_role_its_owner_does_not_hold(operator):
    with pytest.raises(DomainError, match="does not hold the role"):
        api_token_issue(owner=operator, role=QA, name="tablet", acting_user=operator)


def test_a_person_issues_and_revokes_their_own_token_from_a_signed_in_session(operator, password):
    client = Client()
    client.force_login(operator)
    api = Api(client=client)
    wrong = api.post("/api/tokens/", {"name": "tablet", "role": OPERATOR, "password": "nope"})
    assert wrong.status_code == 403
    issued = api.post("/api/tokens/", {"name": "tablet", "role": OPERATOR, "password": password})
    assert issued.status_code == 201, issued.json()
    raw = issued.json()["token"]
    assert Api(raw).get("/api/studies/").status_code == 200
    assert Api(raw).post("/api/tokens/", {"name": "x", "role": OPERATOR, "password": password}).status_code == 403
    revoked = api.post(f"/api/tokens/{issued.json()['id']}/revoke/", {"reason": "tablet retired"})
    assert (revoked.status_code, revoked.json()["revoke_reason"]) == (200, "tablet retired")
    assert Api(raw).get("/api/studies/").status_code == 401
    listed = api.get("/api/tokens/").json()["results"]
    assert [t["prefix"] for t in listed] == [raw[:12]]
    assert "token" not in listed[0]


@pytest.mark.requirement("ANNEX11.12")
def test_a_session_write_needs_the_csrf_token(operator, flask, media_lots):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    body = {"payload": label_payload(flask.code)}
    refused = Api(client=client).post("/api/scans/", body)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    client.get("/accounts/login/")  # sets the csrftoken cookie, as the site's pages do
    accepted = Api(client=client).post("/api/scans/", body, **{"X-CSRFToken": client.cookies["csrftoken"].value})
    assert accepted.status_code == 200


def test_reminders_show_only_the_tokens_role(operator, clinician):
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from lims.models import Reminder

    for role in (OPERATOR, CLINICIAN):
        Reminder.objects.create(
            kind="test",
            content_type=ContentType.objects.get_for_model(operator),
            object_id=operator.pk,
            item_code=role[:3],
            title=f"For {role}",
            audience_role=role,
            due_at=timezone.now(),
        )
    operator.groups.add(Group.objects.get(name=CLINICIAN))
    titles = [r["title"] for r in Api(token_for(operator, OPERATOR)).get("/api/reminders/").json()["results"]]
    assert titles == [f"For {OPERATOR}"]


@pytest.mark.requirement("CFR11.300")
def test_the_server_command_issues_and_revokes_a_device_token(operator):
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "api_token", "issue", "olivia", "--role", OPERATOR, "--name", "tablet 3", stdout=out, stderr=io.StringIO()
    )
    raw = out.getvalue().strip()
    assert Api(raw).get("/api/studies/").status_code == 200
    token = stored_token(raw)
    assert token.history.get().history_user.username == "stroma-system"
    call_command("api_token", "revoke", token.prefix, "--reason", "retired", stdout=io.StringIO())
    assert Api(raw).get("/api/studies/").status_code == 401
