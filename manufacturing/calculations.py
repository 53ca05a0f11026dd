"""Pure culture arithmetic: population doublings, doubling time and seeding density."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

TWO_PLACES = Decimal("0.01")


def population_doublings(seeded: int, harvested: int) -> Decimal:
    """PD = log₂(N_harvested / N_seeded): 5×10⁵ → 4×10⁶ is 3.00."""
    if seeded <= 0 or harvested <= 0:
        raise ValueError("cell numbers must be above zero")
    return Decimal(str(math.log2(harvested / seeded))).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def doubling_time_hours(hours: float, seeded: int, harvested: int) -> Decimal | None:
    """t·ln2 / ln(N/N₀): 3 PD in 7 days is 56 h. None when the cells did not grow."""
    if harvested <= seeded or hours <= 0:
        return None
    value = hours * math.log(2) / math.log(harvested / seeded)
    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def density_per_cm2(cells: int, area_cm2: Decimal) -> int:
    return int((Decimal(cells) / area_cm2).to_integral_value(rounding=ROUND_HALF_UP))
