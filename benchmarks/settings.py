"""Settings of a benchmark run: the project's own settings, plus the bare view's URLconf.

Everything that decides speed (middleware, history, signatures, templates, the database) is the
project's. Only three things differ, and none of them is on a measured path:

* ``ROOT_URLCONF`` adds the bare floor view (:mod:`benchmarks.urls`) beside the project's URLs;
* reminder e-mail goes to memory, so a sweep does not print hundreds of messages;
* database connections persist (``STROMA_DB_CONN_MAX_AGE``, 60 s unless set), as a deployment
  behind gunicorn would run; the bare view and Stroma's views pay the same either way.
"""

from __future__ import annotations

import os

os.environ.setdefault("STROMA_DB_CONN_MAX_AGE", "60")

from lims.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.urls"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

if os.environ.get("STROMA_BENCH_FAST_HASHER") == "1":
    # --small only: it checks that every code path runs, not how fast a password is hashed.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
