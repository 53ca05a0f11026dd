"""Production hardening as a browser sees it, and no secret in the repository (Annex 11 §12).

`check --deploy`, the login lockout, the idle timeout and the refusal to start without a secret key
are shown in tests/lims/test_roles_and_access.py; these tests add the response a browser receives
under the production settings, and the repository scan.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

pytestmark = pytest.mark.requirement("ANNEX11.12")

ROOT = Path(__file__).resolve().parents[2]
HOST = "stroma.example.org"
# What lims/settings.py decides for production that shapes a response: read from a real start-up.
RESPONSE_SETTINGS = (
    "DEBUG",
    "ALLOWED_HOSTS",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "SECURE_CROSS_ORIGIN_OPENER_POLICY",
    "X_FRAME_OPTIONS",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
)
VIA_TLS_PROXY = {"host": HOST, "x-forwarded-proto": "https"}


def _production_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "STROMA_ENV": "production", "STROMA_ALLOWED_HOSTS": HOST, "STROMA_VAR_DIR": str(tmp)}
    for variable in ("STROMA_DEBUG", "STROMA_SSL_REDIRECT", "STROMA_HSTS_SECONDS", "DJANGO_ALLOW_ASYNC_UNSAFE"):
        env.pop(variable, None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{k: getattr(settings, k, None) for k in {RESPONSE_SETTINGS!r}}}))"
    )
    env = _production_env(
        tmp_path_factory.mktemp("var"), SECRET_KEY=secrets.token_urlsafe(64), DJANGO_SETTINGS_MODULE="lims.settings"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    values = json.loads(result.stdout)
    values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"] or ()) or None
    return values


@pytest.fixture
def production_settings(settings, production):
    for name, value in production.items():
        setattr(settings, name, value)
    return settings


def test_a_page_behind_the_tls_proxy_carries_every_security_header(client, operator, production_settings):
    assert production_settings.DEBUG is False
    client.force_login(operator)
    response = client.get(reverse("home"), headers=VIA_TLS_PROXY)
    assert response.status_code == 200
    expected = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
    }
    sent = {name: response.headers.get(name) for name in expected}
    print(f"RELIABILITY deployment headers {sent}")
    assert sent == expected


def test_plain_http_is_redirected_to_https_without_hsts(client, production_settings):
    response = client.get(reverse("login"), headers={"host": HOST})
    assert response.status_code == 301
    assert response["Location"] == f"https://{HOST}{reverse('login')}"
    assert "Strict-Transport-Security" not in response.headers, "HSTS is only sent over HTTPS"


def test_session_and_csrf_cookies_are_secure_and_hidden_from_scripts(client, operator, password, production_settings):
    login_page = client.get(reverse("login"), headers=VIA_TLS_PROXY)
    csrf = login_page.cookies["csrftoken"]
    logged_in = client.post(
        reverse("login"), {"username": operator.username, "password": password}, headers=VIA_TLS_PROXY
    )
    assert logged_in.status_code == 302
    session = logged_in.cookies["sessionid"]
    flags = {
        name: {"secure": bool(c["secure"]), "httponly": bool(c["httponly"]), "samesite": c["samesite"]}
        for name, c in (("sessionid", session), ("csrftoken", csrf))
    }
    print(f"RELIABILITY deployment cookies {flags}")
    assert flags == {
        "sessionid": {"secure": True, "httponly": True, "samesite": "Lax"},
        "csrftoken": {"secure": True, "httponly": True, "samesite": "Lax"},
    }
    assert not session["max-age"], "the session ends with the browser, and after the idle timeout"


def test_production_refuses_the_published_development_key(tmp_path):
    from lims.settings import DEVELOPMENT_SECRET_KEY

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=_production_env(tmp_path, SECRET_KEY=DEVELOPMENT_SECRET_KEY),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is the published development key" in result.stderr


# --- No secret in the repository ------------------------------------------------------------------

SECRET_PATTERNS = {
    "private key": re.compile(r"-{5}BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-{5}"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"(?i)aws_secret_access_key\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}"),
    "SECRET_KEY literal": re.compile(r"\bSECRET_KEY[\"']?\s*[:=]\s*[\"']([^\"'\s]{8,})[\"']"),
    # KEY=value lines of an env file or a shell; placeholders (<…>, $VAR, …) are documentation.
    "secret in an env line": re.compile(
        r"^\s*(?:export\s+)?(?:SECRET_KEY|STROMA_LABEL_KEY|[A-Z_]*PASSWORD|[A-Z_]*SECRET)=(?![<$\"'…])(\S+)",
        re.MULTILINE,
    ),
    "password in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@<\"']+:(?![<$])[^@\s<>\"'/]+@"),
}
SECRET_FILES = re.compile(r"(?:^|/)(?:\.env(?:\..+)?|id_rsa|id_ed25519|[^/]+\.(?:pem|key|p12|pfx|jks))$")
# The one literal allowed: lims/settings.py's development key, which production refuses (test above).
ALLOWED = {("lims/settings.py", "SECRET_KEY literal", "development-only-")}


def repository_files() -> list[str]:
    """What is committed, plus new files not ignored: what the next commit could carry."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return sorted(name for name in listed.stdout.decode().split("\0") if name and (ROOT / name).is_file())


def secret_findings(root: Path, files: list[str]) -> list[str]:
    findings = [f"{name}: a key or credential file" for name in files if SECRET_FILES.search(name)]
    for name in files:
        text = (root / name).read_bytes().decode("utf-8", errors="ignore")
        for what, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                value = match.group(match.lastindex or 0)
                if any(name == f and what == w and value.startswith(p) for f, w, p in ALLOWED):
                    continue
                line = text.count("\n", 0, match.start()) + 1
                findings.append(f"{name}:{line}: {what}")
    return findings


def test_no_secret_is_committed_to_the_repository():
    files = repository_files()
    findings = secret_findings(ROOT, files)
    print(f"RELIABILITY deployment secrets files_scanned={len(files)} findings={len(findings)}")
    assert len(files) > 100
    assert findings == []


def test_the_scan_finds_each_kind_of_planted_secret(tmp_path):
    begin, end = "-----BEGIN ", " PRIVATE KEY-----"
    planted = {
        "config/local.py": 'SECRET_KEY = "' + "k3y" * 20 + '"\n',
        "deploy/stroma.env": "STROMA_EMAIL_HOST_PASSWORD=" + "hunter2hunter2\n",
        "deploy/settings.ini": "DATABASE_URL=postgres://stroma:" + "s3cret@db/stroma\n",
        "notes.txt": begin + "OPENSSH" + end + "\n" + "aws_key = AKIA" + "Z" * 16 + "\n",
        "lims/settings.py": "SECRET_KEY" + ' = "development-only-key-xyz"\n',
        "docs/ok.md": "SECRET_KEY=<50+ random characters>\nDATABASE_URL=postgres://stroma:<password>@db/stroma\n",
        "server.key": "",
    }
    for name, text in planted.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert sorted(secret_findings(tmp_path, sorted(planted))) == [
        "config/local.py:1: SECRET_KEY literal",
        "deploy/settings.ini:1: password in a URL",
        "deploy/stroma.env:1: secret in an env line",
        "notes.txt:1: private key",
        "notes.txt:2: AWS access key id",
        "server.key: a key or credential file",
    ]


# --- docs/deployment.md names only what exists ----------------------------------------------------

GUIDE = ROOT / "docs" / "deployment.md"


def test_the_deployment_guide_lists_every_variable_the_settings_read():
    read = set(re.findall(r"env_(?:str|int|bool|list)\(\s*\"([A-Z0-9_]+)\"", (ROOT / "lims/settings.py").read_text()))
    guide = GUIDE.read_text()
    missing = sorted(name for name in read if f"| `{name}` |" not in guide)
    print(f"RELIABILITY deployment guide variables={len(read)} missing={len(missing)}")
    assert len(read) > 30
    assert missing == []


def test_the_deployment_guide_only_names_commands_that_exist():
    from django.core.management import get_commands

    from lims.wsgi import application

    guide = GUIDE.read_text()
    commands = set(re.findall(r"manage\.py (\w+)", guide))
    assert {"check", "migrate", "collectstatic", "backup", "restore", "signatures_verify"} <= commands
    assert sorted(commands - set(get_commands())) == []
    assert "gunicorn lims.wsgi:application" in guide
    assert callable(application)
    assert re.search(r"^gunicorn==", (ROOT / "requirements.txt").read_text(), re.MULTILINE)


def test_every_test_the_deployment_guide_names_exists():
    named, current = [], ""
    for path, function in re.findall(r"`(tests/[\w/]+\.py)?(?:::(\w+))?`", GUIDE.read_text()):
        current = path or current
        if path or function:
            named.append((current, function))
    for path, function in named:
        file = ROOT / path
        assert file.is_file(), path
        assert not function or f"def {function}(" in file.read_text(), f"{path}::{function}"
    assert len(named) >= 15
