"""Stroma settings: one file, every value read from the environment.

The embedded default (SQLite, a filesystem broker, console e-mail) serves the demo with
no server installed. PostgreSQL, Redis and production hardening are chosen by
environment variables; README.md lists every one of them.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from lims.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("STROMA_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded database, broker and beat schedule live here

# "development" serves the demo and the tests; "production" refuses to start without a
# secret key and switches on every transport-security setting that check --deploy wants.
STROMA_ENV = env_str("STROMA_ENV", "development")
if STROMA_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("STROMA_ENV must be 'development' or 'production'")
PRODUCTION = STROMA_ENV == "production"

DEBUG = env_bool("STROMA_DEBUG", False)
# Published in the repository, so it protects nothing: production refuses it as firmly as no key at all.
DEVELOPMENT_SECRET_KEY = "development-only-key-not-for-production-use-3c9f1e7a5b2d4c6e8f0a1b2c3d4e5f60"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY")
if PRODUCTION and SECRET_KEY == DEVELOPMENT_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is the published development key; production needs its own secret")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY is required when STROMA_ENV=production")
    SECRET_KEY = DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = env_list("STROMA_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("STROMA_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "simple_history",
    "axes",
    "lims",
    "samples",
    "manufacturing",
    "rest_framework",
    "drf_spectacular",
    "django_filters",
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
    "lims.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "lims.urls"
WSGI_APPLICATION = "lims.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "lims" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "lims.context_processors.site",
            ],
        },
    },
]

# Database: SQLite in var/ unless DATABASE_URL names another (postgres://user@host/db).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'stroma.sqlite3'}"),
        conn_max_age=env_int("STROMA_DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "lims.User"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "lims.backends.RoleBackend",  # Django's ModelBackend, permissions read in one statement
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login lockout (django-axes): five failures lock the username for the cool-off period.
AXES_FAILURE_LIMIT = env_int("STROMA_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("STROMA_LOGIN_COOLOFF_MINUTES", 15) / 60  # hours
# Locked by username alone: the cleanroom's tablets share one address, and locking it would lock
# out every operator at the bench because of one person's typing.
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# Idle timeout: the session ends after this many minutes without a request. Every request moves
# the expiry forward, but lims.sessions writes it at most once a minute (to the minute is enough).
STROMA_IDLE_TIMEOUT_MINUTES = env_int("STROMA_IDLE_TIMEOUT_MINUTES", 15)
SESSION_COOKIE_AGE = STROMA_IDLE_TIMEOUT_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True
SESSION_ENGINE = "lims.sessions"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Electronic signatures: this many wrong passwords within the window lock signing.
STROMA_SIGNATURE_FAILURE_LIMIT = env_int("STROMA_SIGNATURE_FAILURE_LIMIT", 5)
STROMA_SIGNATURE_LOCK_MINUTES = env_int("STROMA_SIGNATURE_LOCK_MINUTES", 15)

# Culture: the most cells a vessel can plausibly hold per cm², and how late an entry may be
# recorded before it counts as backdated and needs a reason.
STROMA_MAX_CELLS_PER_CM2 = env_int("STROMA_MAX_CELLS_PER_CM2", 100_000)
STROMA_BACKDATE_GRACE_MINUTES = env_int("STROMA_BACKDATE_GRACE_MINUTES", 15)

# Labels: the QR payload carries an HMAC under this key (derived from SECRET_KEY if unset).
STROMA_LABEL_KEY = env_str("STROMA_LABEL_KEY", "") or SECRET_KEY

# Time: stored in UTC, shown in the site's zone.
USE_TZ = True
TIME_ZONE = env_str("STROMA_TIME_ZONE", "Asia/Tehran")
LANGUAGE_CODE = "en-gb"
USE_I18N = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # filled by collectstatic in production; whitenoise expects it to exist
STATICFILES_DIRS: list[object] = [BASE_DIR / "lims" / "static"]
# The camera scanner's BarcodeDetector polyfill comes from the npm registry at set-up (make venv).
for _prefix, _folder in (
    ("vendor/barcode-detector", "node_modules/barcode-detector/dist/iife"),
    ("vendor/zxing-wasm", "node_modules/zxing-wasm/dist/reader"),
):
    if (BASE_DIR / _folder).is_dir():
        STATICFILES_DIRS.append((_prefix, BASE_DIR / _folder))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# Audit history (django-simple-history): no revert, no editing of history from the admin.
SIMPLE_HISTORY_REVERT_DISABLED = True
SIMPLE_HISTORY_EDIT = False
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True
STROMA_SYSTEM_USERNAME = "stroma-system"

# Celery: Redis when CELERY_BROKER_URL says so, otherwise kombu's filesystem transport.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("queue", "processed"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        {
            "data_folder_in": str(_broker_dir / "queue"),
            "data_folder_out": str(_broker_dir / "queue"),
            "processed_folder": str(_broker_dir / "processed"),
            "store_processed": False,
        }
    )
CELERY_TASK_ALWAYS_EAGER = env_bool("STROMA_CELERY_EAGER", False)
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# A sweep cut off by a lost broker connection is simply run again (it is idempotent): cancel it.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True

# Reminders (docs/reminders.md): ONE beat task sweeps the database every STROMA_SWEEP_MINUTES (UTC
# schedule); what is due is derived from the records, so no task is ever scheduled days ahead.
STROMA_SWEEP_MINUTES = env_int("STROMA_SWEEP_MINUTES", 5)
# Tests only: a sweep every N seconds (overrides the minutes when above 0).
STROMA_SWEEP_SECONDS = env_int("STROMA_SWEEP_SECONDS", 0)
# Tests only: pause this long (ms) before each reminder e-mail, so a test can kill a worker mid-sweep.
STROMA_SWEEP_TEST_DELAY_MS = env_int("STROMA_SWEEP_TEST_DELAY_MS", 0)
# An open reminder still not done this many hours after it fell due is escalated to the lab manager, once.
STROMA_REMINDER_GRACE_HOURS = env_int("STROMA_REMINDER_GRACE_HOURS", 4)
# A released reagent lot still in use is flagged this many days before it expires.
STROMA_LOT_EXPIRY_WARNING_DAYS = env_int("STROMA_LOT_EXPIRY_WARNING_DAYS", 14)
# People who chose the daily digest get it at this hour, site time.
STROMA_DIGEST_HOUR = env_int("STROMA_DIGEST_HOUR", 7)
# The address reminder e-mails link to.
STROMA_SITE_URL = env_str("STROMA_SITE_URL", "http://127.0.0.1:8000")

# E-mail: printed to the console unless a backend is configured.
EMAIL_BACKEND = env_str("STROMA_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("STROMA_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("STROMA_EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("STROMA_EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("STROMA_EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("STROMA_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("STROMA_DEFAULT_FROM_EMAIL", "stroma@localhost")
# Where django.core.mail.backends.filebased.EmailBackend writes (tests read what a worker sent).
EMAIL_FILE_PATH = env_str("STROMA_EMAIL_FILE_PATH", str(VAR_DIR / "mail"))

# Transport security: on in production, so that check --deploy passes with no warning.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_SSL_REDIRECT = env_bool("STROMA_SSL_REDIRECT", PRODUCTION)
SECURE_HSTS_SECONDS = env_int("STROMA_HSTS_SECONDS", 31536000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
if PRODUCTION:
    # A TLS-terminating proxy in front of gunicorn tells Django the request was HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("STROMA_LOG_LEVEL", "WARNING")},
}

# --- REST API (docs/api.md) ---------------------------------------------------------------------
# Tokens for devices and integrations act within the owner's permissions AND the token's role: the
# scope backend comes first so that its refusal stops the permission check before any grant.
AUTHENTICATION_BACKENDS = ["api.authentication.TokenScopeBackend", *AUTHENTICATION_BACKENDS]
# A write body larger than this is refused with 413 before it is parsed (Django's own limit does not
# apply to DRF's streaming JSON parser).
STROMA_API_MAX_BODY_BYTES = env_int("STROMA_API_MAX_BODY_BYTES", 64 * 1024)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.RolePermission"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "api.schema.StromaAutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stroma API",
    "DESCRIPTION": (
        "Read every record and perform the bench steps through the same services as the pages. "
        "Refusals are JSON: {detail, code, reasons}. See docs/api.md."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.forbid_unknown_request_fields",
    ],
}
