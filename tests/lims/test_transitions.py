"""Every status enum has one allowed-transition map; walk each one."""

from __future__ import annotations

import importlib

import pytest

MAPS = [
    ("samples.models", "ProtocolStatus", "PROTOCOL_TRANSITIONS"),
    ("samples.models", "SubjectStatus", "SUBJECT_TRANSITIONS"),
    ("samples.models", "AspirateStatus", "ASPIRATE_TRANSITIONS"),
    ("manufacturing.models", "BatchStatus", "BATCH_TRANSITIONS"),
    ("manufacturing.models", "FlaskStatus", "FLASK_TRANSITIONS"),
    ("manufacturing.models", "LotStatus", "LOT_TRANSITIONS"),
    ("manufacturing.models", "SpecStatus", "SPEC_TRANSITIONS"),
    ("manufacturing.models", "ProductStatus", "PRODUCT_TRANSITIONS"),
]


@pytest.mark.requirement("CFR11.10f")
@pytest.mark.parametrize(("module", "enum", "mapping"), MAPS)
def test_every_status_has_a_row_and_every_edge_leads_to_a_known_status(module, enum, mapping):
    loaded = importlib.import_module(module)
    statuses = set(getattr(loaded, enum).values)
    transitions = getattr(loaded, mapping)
    assert set(transitions) == statuses
    for source, targets in transitions.items():
        assert targets <= statuses, source
        assert source not in targets, f"{source} may not transition to itself"


@pytest.mark.parametrize(("module", "enum", "mapping"), MAPS)
def test_every_status_is_reachable_from_the_first(module, enum, mapping):
    loaded = importlib.import_module(module)
    statuses = list(getattr(loaded, enum).values)
    transitions = getattr(loaded, mapping)
    seen, frontier = {statuses[0]}, [statuses[0]]
    while frontier:
        for target in transitions[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(statuses)


def test_the_state_diagrams_in_docs_match_the_transition_maps():
    from lims.management.commands.state_diagrams import TARGET, render

    assert TARGET.read_text() == render(), "run `manage.py state_diagrams` and commit docs/state-diagrams.md"
