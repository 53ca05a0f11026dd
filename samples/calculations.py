"""Pure calculations of the samples app: age, DAS28-ESR and the endpoint change.

Kept free of the database so that hand-checked examples can be tested line by line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal


def age_in_whole_years(born: date, on: date) -> int:
    """Completed years on a date: someone born 1990-06-15 is 35 on 2025-06-15, 34 the day before."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def das28_esr(*, tender: int, swollen: int, esr_mm_h: Decimal, patient_vas_mm: int) -> Decimal:
    """DAS28-ESR = 0.56·√TJC28 + 0.28·√SJC28 + 0.70·ln(ESR) + 0.014·VAS, to two decimals."""
    if not 0 <= tender <= 28 or not 0 <= swollen <= 28:
        raise ValueError("joint counts are out of 28")
    if esr_mm_h <= 0:
        raise ValueError("ESR must be above 0 mm/h")
    if not 0 <= patient_vas_mm <= 100:
        raise ValueError("the patient's global VAS is 0 to 100 mm")
    score = (
        0.56 * math.sqrt(tender) + 0.28 * math.sqrt(swollen) + 0.70 * math.log(float(esr_mm_h)) + 0.014 * patient_vas_mm
    )
    return Decimal(str(score)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def das28_category(score: Decimal) -> str:
    """Remission < 2.6 ≤ low ≤ 3.2 < moderate ≤ 5.1 < high."""
    if score < Decimal("2.6"):
        return "remission"
    if score <= Decimal("3.2"):
        return "low"
    if score <= Decimal("5.1"):
        return "moderate"
    return "high"


@dataclass(frozen=True)
class Change:
    absolute: Decimal
    relative_percent: Decimal | None


def change_from_baseline(baseline: Decimal, follow_up: Decimal) -> Change:
    """Absolute change in the value's own unit (points for a percentage) and relative change in % of baseline.

    A baseline of 0 has no relative change: it is reported as missing, not as infinity or an error.
    """
    absolute = follow_up - baseline
    relative = None if baseline == 0 else (absolute / baseline * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return Change(absolute=absolute, relative_percent=relative)
