"""Roles, login lockout, idle timeout and production settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from lims.roles import ROLE_PERMISSIONS, ROLES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.requirement("CFR11.10g", "ANNEX11.12")
def test_the_groups_in_the_database_match_the_role_matrix(db):
    for role, codes in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert granted == codes, role


def test_every_permission_named_in_the_role_matrix_exists(db):
    for codes in ROLE_PERMISSIONS.values():
        for code in codes:
            app_label, codename = code.split(".")
            assert Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists(), code


def test_docs_roles_names_every_role():
    text = (ROOT / "docs" / "roles.md").read_text()
    for role in ROLES:
        assert role in text
    for codes in ROLE_PERMISSIONS.values():
        for code in codes:
            assert f"`{code}`" in text, f"{code} is granted in lims/roles.py but missing from docs/roles.md"


@pytest.mark.requirement("CFR11.300", "ANNEX11.12")
def test_five_wrong_passwords_lock_the_login(client, operator, password):
    url = reverse("login")
    for _ in range(5):
        response = client.post(url, {"username": operator.username, "password": "wrong-password"})
    assert response.status_code == 429
    assert "locked" in response.content.decode()
    response = client.post(url, {"username": operator.username, "password": password})
    assert response.status_code == 429, "even the right password is refused while locked"


def test_a_correct_login_lands_on_the_home_page(client, operator, password):
    response = client.post(reverse("login"), {"username": operator.username, "password": password})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.requirement("ANNEX11.12")
def test_the_session_ends_after_the_idle_timeout(settings):
    assert settings.SESSION_COOKIE_AGE == settings.STROMA_IDLE_TIMEOUT_MINUTES * 60 == 15 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True


@pytest.mark.requirement("ANNEX11.12")
def test_check_deploy_with_production_settings_reports_no_issues(tmp_path):
    env = {
        **os.environ,
        "STROMA_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "STROMA_ALLOWED_HOSTS": "stroma.example.org",
        "STROMA_VAR_DIR": str(tmp_path),
    }
    env.pop("STROMA_DEBUG", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.requirement("ANNEX11.12")
def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {**os.environ, "STROMA_ENV": "production", "STROMA_VAR_DIR": str(tmp_path)}
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_a_variable_set_to_nothing_counts_as_unset(tmp_path):
    """``DATABASE_URL=`` left empty in an environment file: the embedded database, not a crash at start-up."""
    env = {**os.environ, "DATABASE_URL": "", "CELERY_BROKER_URL": " ", "STROMA_VAR_DIR": str(tmp_path)}
    env.pop("STROMA_ENV", None)
    script = (
        "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL)"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["django.db.backends.sqlite3", "filesystem://"]


@pytest.mark.requirement("ANNEX11.12")
def test_security_headers_are_sent(client, operator):
    client.force_login(operator)
    response = client.get(reverse("home"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def _fresh(user):
    return type(user).objects.get(pk=user.pk)  # a request's user: no permission cache yet


@pytest.mark.requirement("CFR11.10g")
def test_a_persons_permissions_are_read_in_one_statement_and_are_djangos_own(
    operator, qa_officer, clinician, lab_manager, outsider, django_assert_num_queries
):
    from django.contrib.auth.backends import ModelBackend

    from lims.backends import RoleBackend

    outsider.user_permissions.add(Permission.objects.get(codename="view_label"))
    admin = type(operator).objects.create_superuser("root-admin", "root@example.org", "not-used-here-1")
    for person in (operator, qa_officer, clinician, lab_manager, outsider, admin):
        fresh = _fresh(person)
        with django_assert_num_queries(1):
            granted = RoleBackend().get_all_permissions(fresh)
        assert granted == ModelBackend().get_all_permissions(_fresh(person)), person.username
    assert RoleBackend().get_all_permissions(_fresh(outsider)) == {"lims.view_label"}


@pytest.mark.requirement("CFR11.10g")
def test_a_role_taken_away_applies_at_the_persons_next_request(client, operator):
    client.force_login(operator)
    assert client.get(reverse("manufacturing:lot-list")).status_code == 200
    operator.groups.clear()
    assert client.get(reverse("manufacturing:lot-list")).status_code == 403
