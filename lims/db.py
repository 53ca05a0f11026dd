"""Small database helpers shared by the services."""

from __future__ import annotations

import zlib

from django.db import connection


def serialize_on(name: str) -> None:
    """Hold a transaction-scoped lock named ``name``, so that numbering sequences never collide.

    On PostgreSQL this is an advisory lock released at commit or rollback; SQLite already
    serialises writers, so there is nothing to take. Call it inside ``transaction.atomic``.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(name.encode())])


def try_serialize_on(name: str) -> bool:
    """Take the lock named ``name`` for this transaction if nobody holds it; say whether we got it.

    For work that another process may already be doing (e-mailing one person): the second comer
    leaves it to the first instead of waiting and doing half of it. Always true on SQLite.
    """
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [zlib.crc32(name.encode())])
        return bool(cursor.fetchone()[0])
