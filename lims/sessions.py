"""Database sessions whose idle clock is pushed forward at most once a minute.

The idle timeout (``SESSION_COOKIE_AGE``) ends a session that has seen no request for that long,
because ``SESSION_SAVE_EVERY_REQUEST`` moves its expiry forward on every request. Saving on every
request costs a transaction with an ``UPDATE`` and a commit on every page, scan and poll. Here that
save is skipped while the stored expiry was set less than a minute ago and nothing in the session
changed: the session still ends 14 to 15 minutes after the last request, never later, and a
changed session (a login, a message for the next page) is always saved at once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

REFRESH_AT_MOST_EVERY = dt.timedelta(seconds=60)


class SessionStore(DatabaseSessionStore):
    _stored_expiry: dt.datetime | None = None

    def _get_session_from_db(self) -> Any:
        stored = super()._get_session_from_db()  # type: ignore[misc]
        self._stored_expiry = stored.expire_date if stored is not None else None
        return stored

    def save(self, must_create: bool = False) -> None:
        if not must_create and not self.modified and self.session_key is not None and self._refreshed_recently():
            return
        super().save(must_create=must_create)

    def _refreshed_recently(self) -> bool:
        self._get_session()  # type: ignore[attr-defined]  # loads the row once if nothing has yet: its expiry is needed
        if self._stored_expiry is None or self.session_key is None:
            return False
        return self.get_expiry_date() - self._stored_expiry < REFRESH_AT_MOST_EVERY
