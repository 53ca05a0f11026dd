"""Personas and shared fixtures. Integration layers are chosen by environment variables.

DATABASE_URL=postgres://… runs the suite on PostgreSQL (tests marked ``postgres`` need it);
CELERY_BROKER_URL=redis://… enables the real-worker tests (marked ``redis``). Without them
those tests are skipped, unless STROMA_REQUIRE_INTEGRATION=1, as in CI, turns a skip into a failure.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from lims.roles import CLINICIAN, LAB_MANAGER, OPERATOR, QA
from samples.models import Subject
from samples.services import subject_register
from tests.factories import DEMO_PASSWORD, UserFactory, approved_study, subject_dates

REQUIRE_INTEGRATION = os.environ.get("STROMA_REQUIRE_INTEGRATION") == "1"
FIGURES: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep the ``RELIABILITY …`` lines that tests print, so that the run ends by quoting them."""
    if report.when == "call":
        for _, text in report.sections:
            FIGURES.extend(line.strip() for line in text.splitlines() if line.strip().startswith("RELIABILITY "))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


def _missing(what: str) -> None:
    if REQUIRE_INTEGRATION:
        pytest.fail(f"{what} is required here (STROMA_REQUIRE_INTEGRATION=1) but not configured")
    pytest.skip(f"{what} not configured")


@pytest.fixture(autouse=True)
def _integration_requirements(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _missing("PostgreSQL (DATABASE_URL)")
    if request.node.get_closest_marker("redis") and not settings.CELERY_BROKER_URL.startswith("redis://"):
        _missing("Redis (CELERY_BROKER_URL)")


@pytest.fixture
def password() -> str:
    return DEMO_PASSWORD


@pytest.fixture
def operator(db: Any) -> Any:
    return UserFactory(username="olivia", first_name="Olivia", last_name="Operator", role=OPERATOR)


@pytest.fixture
def second_operator(db: Any) -> Any:
    return UserFactory(username="oscar", first_name="Oscar", last_name="Operator", role=OPERATOR)


@pytest.fixture
def qa_officer(db: Any) -> Any:
    return UserFactory(username="quinn", first_name="Quinn", last_name="Assurance", role=QA)


@pytest.fixture
def clinician(db: Any) -> Any:
    return UserFactory(username="clara", first_name="Clara", last_name="Clinician", role=CLINICIAN)


@pytest.fixture
def lab_manager(db: Any) -> Any:
    return UserFactory(username="maria", first_name="Maria", last_name="Manager", role=LAB_MANAGER)


@pytest.fixture
def outsider(db: Any) -> Any:
    """A valid account with no role: logged in, but allowed nothing."""
    return UserFactory(username="otto", first_name="Otto", last_name="Outsider")


@pytest.fixture
def study(lab_manager: Any, password: str) -> Any:
    """NCT03333681 with its reference protocol, approved by the lab manager's signature."""
    return approved_study(lab_manager, password)


@pytest.fixture
def subject(study: Any, clinician: Any) -> Subject:
    return subject_register(study=study, acting_user=clinician, sex="F", **subject_dates())


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Production hashing is deliberately slow; tests hash many passwords."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
