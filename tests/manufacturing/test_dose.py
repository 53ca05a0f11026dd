"""Dose by body weight and the patient's endotoxin limit, in exact arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manufacturing.dose import DoseRefused, DoseWindow, calculate_dose, endotoxin_limit

WINDOW = DoseWindow(Decimal("1.0"), Decimal("2.0"))
MILLION = Decimal(1_000_000)


def _dose(weight="58.0", target="1.0", concentration="3.0e6", cells="200e6", volume="70"):
    return calculate_dose(
        weight_kg=Decimal(weight),
        target_million_per_kg=Decimal(target),
        concentration_per_ml=Decimal(concentration),
        available_cells=Decimal(cells),
        available_volume_ml=Decimal(volume),
        window=WINDOW,
        syringe_resolution_ml=Decimal("0.1"),
        k_eu_per_kg=Decimal("5"),
    )


def test_58_kg_at_1_million_per_kg_rounds_up_so_the_dose_stays_in_the_window():
    dose = _dose()
    assert dose.cells_to_give == Decimal("58.0") * MILLION
    # 58×10⁶ ÷ 3×10⁶/mL = 19.33 mL: 19.3 mL would give 0.998×10⁶/kg, below the window; 19.4 mL gives 1.003.
    assert dose.volume_ml == Decimal("19.4")
    assert dose.achieved_cells == Decimal("58200000")
    assert dose.achieved_million_per_kg == Decimal("1.003")
    assert dose.achieved_million_per_kg >= Decimal("1.0")


def test_a_product_with_too_few_cells_is_refused_with_the_highest_achievable_dose():
    # 100×10⁶ cells ÷ 73 kg = 1.369…×10⁶/kg, rounded down so the promise can be kept
    with pytest.raises(DoseRefused, match=r"highest dose it can give this subject is 1\.36 ×10⁶ cells/kg"):
        _dose(weight="73.0", target="1.5", cells="100e6", volume="33.3")


def test_60_kg_and_40_ml_give_an_endotoxin_limit_of_7_5_eu_per_ml():
    assert endotoxin_limit(k_eu_per_kg=Decimal(5), weight_kg=Decimal(60), volume_ml=Decimal(40)) == Decimal("7.5")


@pytest.mark.parametrize("target", ["2.5", "0.9", "0"])
def test_a_target_outside_the_window_is_refused_with_the_window(target):
    with pytest.raises(DoseRefused, match=r"outside the protocol's window of 1\.0–2\.0"):
        _dose(target=target)


@settings(max_examples=300, deadline=None)
@given(
    weight=st.decimals(min_value=30, max_value=200, places=1),
    target=st.decimals(min_value=1, max_value=2, places=2),
    concentration=st.decimals(min_value=Decimal("0.5e6"), max_value=Decimal("20e6"), places=0),
    cells=st.decimals(min_value=Decimal("10e6"), max_value=Decimal("600e6"), places=0),
)
def test_the_achieved_dose_is_always_inside_the_window_and_never_needs_more_than_the_bag(
    weight, target, concentration, cells
):
    volume = (cells / concentration).quantize(Decimal("0.1"))
    if volume <= 0:
        return
    try:
        dose = calculate_dose(
            weight_kg=weight,
            target_million_per_kg=target,
            concentration_per_ml=concentration,
            available_cells=cells,
            available_volume_ml=volume,
            window=WINDOW,
            syringe_resolution_ml=Decimal("0.1"),
            k_eu_per_kg=Decimal(5),
        )
    except DoseRefused:
        return
    per_kg = dose.achieved_cells / weight / MILLION
    assert WINDOW.min_million_per_kg <= per_kg <= WINDOW.max_million_per_kg
    assert dose.achieved_cells <= cells
    assert dose.volume_ml <= volume
    assert dose.volume_ml % Decimal("0.1") == 0
