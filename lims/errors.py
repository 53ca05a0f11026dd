"""The one error a refused step raises.

Services raise :class:`DomainError` with a sentence for the person at the bench; views and
the admin show it as a message, the API as a 4xx body. Nothing is written when it is raised,
because every service runs inside a transaction.
"""

from __future__ import annotations


class DomainError(Exception):
    """A step the rules refuse, with a message a person understands."""

    def __init__(self, message: str, *, code: str = "refused", reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reasons = reasons or [message]

    def __str__(self) -> str:
        return self.message
