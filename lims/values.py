"""Reading numbers typed at the bench: one place that turns input into checked values.

Every parser raises DomainError with the field's name, so a refusal reads
"Confluence must be between 0 and 100 %, not 140 %." rather than a type error.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def number(value: object, what: str) -> Decimal:
    """A finite decimal number (NaN and infinity are refused, thousands separators are not accepted)."""
    from lims.errors import DomainError

    try:
        parsed = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise DomainError(f"{what} must be a number, not {value!r}.") from exc
    if not parsed.is_finite():
        raise DomainError(f"{what} must be a number, not {value!r}.")
    return parsed


def percent(value: object, what: str) -> Decimal:
    from lims.errors import DomainError

    parsed = number(value, what)
    if not Decimal(0) <= parsed <= Decimal(100):
        raise DomainError(f"{what} must be between 0 and 100 %, not {value} %.")
    return parsed


def positive(value: object, what: str, unit: str) -> Decimal:
    from lims.errors import DomainError

    parsed = number(value, what)
    if parsed <= 0:
        raise DomainError(f"{what} must be above 0 {unit}.")
    return parsed


MAX_CELLS = 10**15  # far above any culture, far below what a 64-bit column holds


def cell_count(value: object, what: str) -> int:
    """A whole, positive number of cells; spaces and commas typed as thousands separators are allowed.

    Only ASCII digits: ``str.isdigit`` also accepts superscripts such as "10⁶", which ``int`` cannot read.
    """
    from lims.errors import DomainError

    text = str(value).replace(" ", "").replace(",", "").replace("\u202f", "")
    if not (text.isascii() and text.isdigit()):
        raise DomainError(f"{what} must be a whole number of cells above zero, not {value!r}.")
    parsed = int(text)
    if parsed <= 0:
        raise DomainError(f"{what} must be above zero.")
    if parsed > MAX_CELLS:
        raise DomainError(f"{what} of {parsed:,} is more than any culture holds; check the count.")
    return parsed
