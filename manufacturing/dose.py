"""Dose by body weight, in exact decimal arithmetic (domain §2 step 10, §3 endotoxin).

cells to give = target (×10⁶ cells/kg) × weight; volume to draw = cells ÷ viable concentration,
rounded to the syringe's resolution in the direction that keeps the achieved dose inside the
protocol's window and nearest the target. The endotoxin limit for one patient is
K × weight ÷ volume (USP <85>, K = 5 EU/kg for a dose given within one hour).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

MILLION = Decimal(1_000_000)


class DoseRefused(ValueError):
    """The numbers do not allow a dose; the message says which and by how much."""


@dataclass(frozen=True)
class DoseWindow:
    min_million_per_kg: Decimal
    max_million_per_kg: Decimal


@dataclass(frozen=True)
class Dose:
    cells_to_give: Decimal
    volume_ml: Decimal
    achieved_cells: Decimal
    achieved_million_per_kg: Decimal
    endotoxin_limit_eu_per_ml: Decimal


def endotoxin_limit(*, k_eu_per_kg: Decimal, weight_kg: Decimal, volume_ml: Decimal) -> Decimal:
    """Allowed EU/mL when the whole volume is given: 60 kg and 40 mL give 7.5 EU/mL."""
    return (k_eu_per_kg * weight_kg / volume_ml).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)


def calculate_dose(
    *,
    weight_kg: Decimal,
    target_million_per_kg: Decimal,
    concentration_per_ml: Decimal,
    available_cells: Decimal,
    available_volume_ml: Decimal,
    window: DoseWindow,
    syringe_resolution_ml: Decimal,
    k_eu_per_kg: Decimal,
) -> Dose:
    if not window.min_million_per_kg <= target_million_per_kg <= window.max_million_per_kg:
        raise DoseRefused(
            f"The target of {target_million_per_kg} ×10⁶ cells/kg is outside the protocol's window of "
            f"{window.min_million_per_kg}–{window.max_million_per_kg} ×10⁶ cells/kg."
        )
    cells = target_million_per_kg * MILLION * weight_kg
    if cells > available_cells:
        highest = (available_cells / weight_kg / MILLION).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
        raise DoseRefused(
            f"The bag holds {available_cells / MILLION:.2f} ×10⁶ viable cells; {cells / MILLION:.2f} ×10⁶ are needed. "
            f"The highest dose it can give this subject is {highest} ×10⁶ cells/kg."
        )
    exact_volume = cells / concentration_per_ml
    candidates = []
    for rounding in (ROUND_FLOOR, ROUND_CEILING):
        steps = (exact_volume / syringe_resolution_ml).to_integral_value(rounding=rounding)
        volume = steps * syringe_resolution_ml
        achieved = (volume * concentration_per_ml).to_integral_value(rounding=ROUND_FLOOR)
        per_kg = achieved / weight_kg / MILLION
        if (
            volume > 0
            and volume <= available_volume_ml
            and achieved <= available_cells
            and (window.min_million_per_kg <= per_kg <= window.max_million_per_kg)
        ):
            candidates.append((abs(per_kg - target_million_per_kg), volume, achieved, per_kg))
    if not candidates:
        raise DoseRefused(
            f"No volume in steps of {syringe_resolution_ml} mL gives a dose inside the window; "
            f"the exact volume would be {exact_volume:.3f} mL."
        )
    _, volume, achieved, per_kg = min(candidates)
    return Dose(
        cells_to_give=cells,
        volume_ml=volume,
        achieved_cells=achieved,
        achieved_million_per_kg=per_kg.quantize(Decimal("0.001"), rounding=ROUND_HALF_UP),
        endotoxin_limit_eu_per_ml=endotoxin_limit(k_eu_per_kg=k_eu_per_kg, weight_kg=weight_kg, volume_ml=volume),
    )
