"""Every state-changing route, requested as every role and as nobody: no one succeeds without the permission.

The matrix is written to docs/validation/permission-matrix.md when STROMA_WRITE_VALIDATION=1 (what
``manage.py permission_matrix`` does); otherwise the committed file must be what this run found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from lims import permission_matrix as pm
from lims.roles import CLINICIAN, LAB_MANAGER, OPERATOR, QA
from tests.api.helpers import Api, stored_token, token_for
from tests.factories import UserFactory
from tests.reliability.permission_world import Call, People, arrange

pytestmark = pytest.mark.requirement("CFR11.10g", "ANNEX11.12")


def staff(user: Any) -> Any:
    """The QA workplace needs is_staff, given to QA officers and the lab manager (docs/roles.md)."""
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


@pytest.fixture
def people(operator, qa_officer, clinician, lab_manager, outsider, second_operator, password) -> People:
    return People(
        operator=operator,
        qa=staff(qa_officer),
        clinician=clinician,
        lab_manager=staff(lab_manager),
        outsider=outsider,
        second_operator=second_operator,
        second_qa=UserFactory(username="quentin", first_name="Quentin", last_name="Second", role=QA),
        second_clinician=UserFactory(username="colin", first_name="Colin", last_name="Clinician", role=CLINICIAN),
        third_clinician=UserFactory(username="cora", first_name="Cora", last_name="Clinician", role=CLINICIAN),
        password=password,
    )


class Sender:
    """Sends one request as one column: a signed-in session for pages and admin, a bearer token for the API."""

    def __init__(self, people: People) -> None:
        self.users: dict[str, Any] = {
            pm.ANONYMOUS: None,
            pm.NO_ROLE: people.outsider,
            OPERATOR: people.operator,
            QA: people.qa,
            CLINICIAN: people.clinician,
            LAB_MANAGER: people.lab_manager,
        }
        self.tokens = {column: token_for(user, self._role(user)) for column, user in self.users.items() if user}
        # One client per column, signed in once: each new client loads the middleware again (WhiteNoise
        # scans every static file), which would cost more than the requests themselves.
        self.clients = {column: self._signed_in(user) for column, user in self.users.items()}
        self.api_client = Client()

    @staticmethod
    def _role(user: Any) -> str:
        # The outsider's token names a role its owner does not hold (tests/api/conftest.py: as_outsider).
        return Group.objects.filter(user=user).values_list("name", flat=True).first() or OPERATOR

    @staticmethod
    def _signed_in(user: Any) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    def outcome(self, route: pm.Route, method: str, url: str, call: Call, column: str) -> pm.Outcome:
        body = call.body(self.users[column])
        if hasattr(route.callback, "cls"):
            api = Api(self.tokens.get(column), client=self.api_client)
            return pm.rolled_back(lambda: api.post(url, body))
        client = self.clients[column]
        if method == "POST":
            return pm.rolled_back(lambda: client.post(url, body))
        encoded = urlencode(body, doseq=True)
        return pm.rolled_back(
            lambda: client.generic(method, url, encoded, content_type="application/x-www-form-urlencoded")
        )


def accepted_methods(route: pm.Route, url: str, superuser: Client) -> tuple[str, ...]:
    """A function view's state-changing methods, found by calling it as someone every check lets through."""
    declared = pm.declared_methods(route)
    if declared is not None:
        return declared
    return tuple(
        method
        for method in pm.UNSAFE_METHODS
        if pm.rolled_back(lambda method=method: superuser.generic(method, url)).status != 405
    )


def admin_kwargs(route: pm.Route) -> dict[str, Any]:
    """An admin page's path names the first record of its model (or one that does not exist when none is kept)."""
    model = pm.admin_model(route)
    first = model._default_manager.order_by("pk").first() if model is not None else None
    found: dict[str, Any] = {}
    for name in pm.path_parameters(route):
        found[name] = str(first.pk if first is not None else 1)
    return found


def test_the_walk_finds_every_write_operation_of_the_api_schema():
    walked = {
        (method, pm.schema_path(route))
        for route in pm.walk_urls()
        if route.kind == "api" and pm.skip_reason(route) is None
        for method in pm.declared_methods(route) or ()
    }
    assert pm.schema_operations() == walked


@dataclass
class Walk:
    rows: list[pm.Row] = field(default_factory=list)
    unarranged: list[str] = field(default_factory=list)
    read_only: int = 0


def request_every_route(calls: dict[str, Call], sender: Sender, superuser: Client) -> Walk:
    """Each route that takes a state-changing method, sent once per method by every column."""
    walk = Walk()
    for route in pm.walk_urls():
        if pm.skip_reason(route) is not None:
            continue
        # A route with nothing arranged is called with placeholders: the method check comes before any lookup.
        placeholder = admin_kwargs(route) if route.kind == "admin" else dict.fromkeys(pm.path_parameters(route), "1")
        call = calls.get(route.key) or Call(placeholder)
        url = reverse(route.name, kwargs=call.kwargs)
        methods = accepted_methods(route, url, superuser)
        walk.read_only += not methods
        if methods and route.kind != "admin" and route.key not in calls:
            walk.unarranged.append(f"{route.key} takes {methods}")
            continue
        for method in methods:
            row = pm.Row(method, route, pm.guard_for(route, method, call.kwargs))
            row.outcomes = {column: sender.outcome(route, method, url, call, column) for column in pm.COLUMNS}
            walk.rows.append(row)
    return walk


def not_real(rows: list[pm.Row]) -> list[str]:
    """Rows whose request proves nothing: an entitled person was told the record does not exist, or nobody
    entitled succeeded at a step that changes something (then a refusal of the others means little)."""
    found = []
    for row in rows:
        entitled = [column for column in pm.COLUMNS if row.guard.entitles(column)]
        if any(row.outcomes[column].status == 404 for column in entitled):
            found.append(f"{row.method} {row.route.key}: 404 for an entitled person")
        proven = any(row.outcomes[column].allowed for column in entitled)
        if row.route.kind != "admin" and row.guard.changes_something() and not proven:
            found.append(f"{row.method} {row.route.key}: nobody entitled succeeded")
    return found


def test_no_role_succeeds_at_a_state_changing_route_without_its_permission(people, study, capsys):
    sender = Sender(people)
    calls = arrange(people, study, operator_token_id=stored_token(sender.tokens[OPERATOR]).pk)
    superuser = Client()
    superuser.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))

    walk = request_every_route(calls, sender, superuser)

    skipped = [(route, reason) for route in pm.walk_urls() if (reason := pm.skip_reason(route))]
    text = pm.render(walk.rows, skipped, walk.read_only)
    target = pm.ROOT / pm.MATRIX_PATH
    if os.environ.get(pm.WRITE_ENV) == "1":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    unauthorised = pm.unauthorised_successes(walk.rows)
    requests = sum(len(row.outcomes) for row in walk.rows)
    with capsys.disabled():
        print(
            f"\nRELIABILITY permission-matrix routes={len(walk.rows)} roles={len(pm.COLUMNS)} requests={requests} "
            f"unauthorised_successes={len(unauthorised)}"
        )
    assert unauthorised == []
    assert walk.unarranged == [], "a route takes a state-changing method but no request is arranged for it"
    assert len(pm.SKIPPED) <= pm.MAX_SKIPPED
    assert pm.schema_operations() <= {(r.method, pm.schema_path(r.route)) for r in walk.rows if r.route.kind == "api"}
    assert requests == len(walk.rows) * len(pm.COLUMNS)
    assert not_real(walk.rows) == []
    assert all(row.outcomes[pm.ANONYMOUS].refused for row in walk.rows if not row.guard.public)
    assert target.read_text(encoding="utf-8") == text, (
        f"{pm.MATRIX_PATH} is out of date: run `python manage.py permission_matrix` and commit it"
    )
