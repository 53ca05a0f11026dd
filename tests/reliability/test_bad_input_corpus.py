"""Bad input, on every form and API write: refused in words with a 4xx, never a server error, nothing half-saved.

Each case of ``tests/reliability/corpus.py`` is sent once against one arranged cleanroom (built once for
the module, rolled back after it; each case runs in its own savepoint). Around the request, the row count
of every table of the four apps — history and signature tables included — is read in one query; only the
evidence a case declares (a recorded scan, a failed signature, a bedside hard stop) may grow, by exactly
its amount. The last test prints the figures::

    RELIABILITY bad-input cases=<n> server_errors=0 partial_writes=0 refusals_with_message=<n>
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection, transaction
from django.test import Client, override_settings
from django.urls import Resolver404, resolve

from tests.reliability.corpus import CASES, Case
from tests.reliability.corpus_world import World, arrange_world

APPS = ("lims_", "samples_", "manufacturing_", "api_")

# Every write the API offers, and every page form of the three apps and lims; the corpus must reach each.
API_WRITES = {
    "api:scan",
    "api:label-custody",
    "api:flask-feed",
    "api:flask-observe",
    "api:flask-passage",
    "api:flask-discard",
    "api:reagentlot-list",
    "api:reagentlot-release",
    "api:reagentlot-recall",
    "api:batch-qc-result",
    "api:batch-decision",
    "api:aspirate-receive",
    "api:product-dose",
    "api:dose-verify",
    "api:token-list",
    "api:token-revoke",
}
PAGE_FORMS = {
    "samples:subject-register",
    "samples:eligibility-checklist",
    "samples:eligibility-confirm",
    "samples:subject-screen-fail",
    "samples:subject-withdraw",
    "samples:aspirate-collect",
    "samples:aspirate-dispatch",
    "samples:aspirate-receive",
    "samples:receive-scan",
    "samples:follow-up-collect",
    "samples:follow-up-results",
    "samples:das28-record",
    "samples:protocol-revise",
    "manufacturing:batch-start-scan",
    "manufacturing:batch-start",
    "manufacturing:batch-seed",
    "manufacturing:batch-harvest",
    "manufacturing:flask-feed",
    "manufacturing:flask-observe",
    "manufacturing:flask-passage",
    "manufacturing:flask-discard",
    "manufacturing:lot-receive",
    "manufacturing:lot-release",
    "manufacturing:lot-recall",
    "release:results",
    "release:retest",
    "release:invalidate",
    "release:spec-draft",
    "release:spec-approve",
    "release:start-testing",
    "release:deviation-close",
    "release:session-new",
    "release:em-reading-new",
    "admin:manufacturing_batch_release_decide",
    "product:formulate",
    "product:dose",
    "product:dose-verify",
    "product:issue",
    "product:receive",
    "product:bedside",
    "product:infusion",
    "scan",
    "custody-new",
    "record-sign",
}


@dataclass(frozen=True)
class Outcome:
    status: int
    server_error: bool
    refused_as_expected: bool
    message_shown: bool
    partial_write: bool
    known_bug: bool


RESULTS: dict[str, Outcome] = {}


def _param(case: Case) -> Any:
    if case.bug:
        return pytest.param(case, id=case.id, marks=pytest.mark.xfail(strict=True, reason=case.bug))
    return pytest.param(case, id=case.id)


@pytest.fixture(scope="module")
def world(django_db_setup: Any, django_db_blocker: Any) -> Any:
    """The arranged cleanroom, in a transaction that the module rolls back; each test adds a savepoint."""
    fast = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])
    with django_db_blocker.unblock(), fast, transaction.atomic():
        try:
            yield arrange_world()
        finally:
            transaction.set_rollback(True)


_COUNT_SQL: dict[str, str] = {}


def row_counts() -> dict[str, int]:
    """Rows of every table of the four apps, read in one query."""
    if connection.vendor not in _COUNT_SQL:
        tables = sorted(t for t in connection.introspection.table_names() if t.startswith(APPS))
        quote = connection.ops.quote_name
        # Table names come from the database's own catalogue, never from input.
        _COUNT_SQL[connection.vendor] = " UNION ALL ".join(
            f"SELECT '{table}', COUNT(*) FROM {quote(table)}"  # noqa: S608
            for table in tables
        )
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SQL[connection.vendor])
        return dict(cursor.fetchall())


def send(client: Client, w: World, case: Case) -> Any:
    url, body = case.url(w), case.body(w)
    if case.via == "page":
        return client.post(url, urlencode(body, doseq=True), content_type="application/x-www-form-urlencoded")
    headers = dict(case.headers)
    if case.via == "api" and case.auth is not None:
        headers["Authorization"] = f"Bearer {w.tokens[case.auth or case.actor]}"
    data = body if case.raw else json.dumps(body)
    return client.post(url, data, content_type=case.content_type, headers=headers)


def shown(told: str) -> str:
    """The part of a refused page worth reading in a failure: from its first alert on."""
    start = told.find('role="alert"')
    return told[start : start + 800] if start >= 0 else told[:1500]


def words(response: Any) -> str:
    """What the person or the device is told: the page's text, or the API error's detail and reasons."""
    text = response.content.decode("utf-8", "replace")
    if response.get("Content-Type", "").startswith("application/json"):
        try:
            error = json.loads(text)
        except ValueError:
            return text
        if isinstance(error, dict):
            return " ".join([str(error.get("detail", "")), *map(str, error.get("reasons", []))])
    return html.unescape(text)


@pytest.mark.requirement("CFR11.10h", "CFR11.10f")
@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_bad_input_is_refused_in_words_and_writes_nothing(world: World, db: Any, case: Case) -> None:
    client = Client(raise_request_exception=False)
    if case.via in ("page", "api-session"):
        client.force_login(world.users[case.actor])
    before = row_counts()
    response = send(client, world, case)
    server_error = response.status_code >= 500
    told = "" if server_error else words(response)
    # After a server error the transaction may be unusable; then the rows cannot be counted.
    countable = not connection.needs_rollback
    changed: dict[str, int] = {}
    if countable:
        after = row_counts()
        changed = {table: after[table] - before[table] for table in after if after[table] != before[table]}
    RESULTS[case.id] = Outcome(
        status=response.status_code,
        server_error=server_error,
        refused_as_expected=response.status_code == case.status,
        message_shown=case.message in told,
        partial_write=countable and changed != dict(case.recorded),
        known_bug=bool(case.bug),
    )
    assert not server_error, f"{case.what}: server error {response.status_code}"
    assert response.status_code == case.status, (
        f"{case.what}: expected a {case.status} refusal, got {response.status_code}: {shown(told)}"
    )
    assert case.message in told, f"{case.what}: the refusal does not say {case.message!r}: {shown(told)}"
    assert changed == dict(case.recorded), f"{case.what}: rows changed {changed}, expected {dict(case.recorded)}"


def _view_name(path: str) -> str:
    try:
        return resolve(path).view_name
    except Resolver404:
        return f"unresolved {path}"


def test_the_corpus_covers_every_form_and_api_write_with_a_worded_refusal(world: World, db: Any) -> None:
    """Checked before any figure is believed: enough cases, every endpoint, no message echoed from the input."""
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"
    assert len(CASES) >= 200
    endpoints = {_view_name(case.url(world).split("?")[0]) for case in CASES}
    assert not API_WRITES - endpoints, f"API writes without a case: {sorted(API_WRITES - endpoints)}"
    assert not PAGE_FORMS - endpoints, f"page forms without a case: {sorted(PAGE_FORMS - endpoints)}"
    for case in CASES:
        assert 400 <= case.status < 500, case.id
        assert case.message, case.id
        sent = case.body(world)
        sent_text = sent.decode("latin-1") if isinstance(sent, bytes) else json.dumps(sent, ensure_ascii=False)
        assert case.message not in sent_text, f"{case.id}: the expected words are in the request itself"


def test_the_corpus_figures(world: World, db: Any) -> None:
    """The figures of the run: every case that ran, without the known bugs marked xfail."""
    if not RESULTS:
        pytest.skip("the figures are those of the corpus cases; run the whole module")
    held = [o for o in RESULTS.values() if not o.known_bug]
    known = [o for o in RESULTS.values() if o.known_bug]
    endpoints = len({_view_name(case.url(world).split("?")[0]) for case in CASES if case.id in RESULTS})
    figures = {
        "cases": len(held),
        "server_errors": sum(o.server_error for o in held),
        "partial_writes": sum(o.partial_write for o in held),
        "refusals_with_message": sum(o.refused_as_expected and o.message_shown for o in held),
    }
    # tests/conftest.py quotes every printed RELIABILITY line at the end of the run.
    print("RELIABILITY bad-input " + " ".join(f"{name}={value}" for name, value in figures.items()))
    print(
        f"RELIABILITY bad-input endpoints={endpoints} database={connection.vendor} "
        f"known_bugs_xfail={len(known)} (server_errors={sum(o.server_error for o in known)})"
    )
    assert figures["server_errors"] == 0
    assert figures["partial_writes"] == 0
    assert figures["refusals_with_message"] == figures["cases"]
    if len(RESULTS) == len(CASES):
        assert figures["cases"] >= 200
