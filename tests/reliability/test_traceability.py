"""The traceability matrix is generated from the requirement markers and cannot go stale or name a test
that does not exist; a marker with an unknown clause id is refused."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from lims.traceability import CLAUSES, GAP, MATRIX_PATH, ROOT, TraceabilityError, collect, generate

NODE_ID = re.compile(r"`(tests/[\w/]+\.py)((?:::\w+)+)`")


def _committed() -> str:
    return (ROOT / MATRIX_PATH).read_text(encoding="utf-8")


def _write_tests(root: Path, source: str, name: str = "test_sample.py") -> Path:
    file = root / "tests" / name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(textwrap.dedent(source), encoding="utf-8")
    return file


def test_the_committed_matrix_is_what_the_markers_generate():
    assert _committed() == generate(), "run `python manage.py traceability` and commit docs/validation/traceability.md"


def test_the_matrix_ends_with_the_number_of_clauses_no_test_proves():
    tests = collect()
    proven = {clause_id for test in tests for clause_id in test.requirements}
    unproven = [clause.id for clause in CLAUSES if clause.id not in proven]
    text = _committed()
    assert text.endswith("\n")
    assert text.splitlines()[-1] == f"Unmapped clauses: {len(unproven)}"
    gap_section = text.split("\n## Gaps\n", 1)[1]
    for clause_id in unproven:
        assert f"- {clause_id} (" in gap_section, f"{clause_id} has no test but is not named as a gap"
        assert f"## {clause_id}\n" in text
    assert gap_section.count(GAP) == len(unproven)


def test_the_catalogue_holds_each_clause_once_with_its_source_requirement_and_feature():
    ids = [clause.id for clause in CLAUSES]
    assert ids == [
        "CFR11.10e",
        "CFR11.10f",
        "CFR11.10g",
        "CFR11.10h",
        "CFR11.50",
        "CFR11.70",
        "CFR11.200",
        "CFR11.300",
        "ANNEX11.7",
        "ANNEX11.8.2",
        "ANNEX11.9",
        "ANNEX11.12",
        "ANNEX11.14",
        "CFR1271.290",
        "FACTJACIE.BEDSIDE",
    ]
    for clause in CLAUSES:
        assert clause.source.strip()
        assert clause.requirement.strip()
        assert clause.feature.strip()


def test_every_test_named_in_the_matrix_is_defined_in_its_file():
    named = NODE_ID.findall(_committed())
    assert named, "the matrix names no test at all"
    for path, chain in named:
        file = ROOT / path
        assert file.is_file(), path
        body: list[ast.stmt] = ast.parse(file.read_text(encoding="utf-8")).body
        *classes, function = chain.strip(":").split("::")
        for name in classes:
            [body] = [node.body for node in body if isinstance(node, ast.ClassDef) and node.name == name]
        defined = {node.name for node in body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
        assert function in defined, f"{path}{chain} is named in the matrix but not defined"


@pytest.mark.parametrize(
    ("source", "line"),
    [
        pytest.param(
            """\
            import pytest


            @pytest.mark.requirement("CFR11.10e", "CFR11.99")
            def test_something():
                pass
            """,
            4,
            id="on-a-function",
        ),
        pytest.param(
            """\
            import pytest

            pytestmark = [pytest.mark.postgres, pytest.mark.requirement("CFR11.10")]
            """,
            3,
            id="in-pytestmark",
        ),
        pytest.param(
            """\
            from pytest import mark


            @mark.requirement("annex11.9")
            class TestSomething:
                def test_one(self):
                    pass
            """,
            4,
            id="on-a-class",
        ),
    ],
)
def test_an_unknown_requirement_id_is_refused_with_its_file_and_line(tmp_path, source, line):
    _write_tests(tmp_path, source)
    with pytest.raises(TraceabilityError, match=rf"tests/test_sample\.py:{line}: unknown requirement id"):
        collect(tmp_path)


def test_a_marker_where_the_matrix_cannot_read_it_is_refused(tmp_path):
    _write_tests(
        tmp_path,
        """\
        import pytest


        @pytest.mark.parametrize("n", [pytest.param(1, marks=pytest.mark.requirement("CFR11.10e"))])
        def test_something(n):
            pass
        """,
    )
    with pytest.raises(TraceabilityError, match=r"tests/test_sample\.py:4: put requirement\(\.\.\.\) markers"):
        collect(tmp_path)


def test_markers_on_functions_classes_and_pytestmark_are_all_collected(tmp_path):
    _write_tests(
        tmp_path,
        """\
        import pytest

        pytestmark = pytest.mark.requirement("ANNEX11.9")


        def test_by_the_module_alone():
            pass


        @pytest.mark.requirement("CFR11.10e", "ANNEX11.9")
        def test_by_the_module_and_itself():
            pass


        @pytest.mark.requirement("CFR11.70")
        class TestSigned:
            pytestmark = [pytest.mark.django_db, pytest.mark.requirement("CFR11.50")]

            @pytest.mark.requirement("ANNEX11.14")
            def test_inside(self):
                pass
        """,
        name="test_b.py",
    )
    _write_tests(
        tmp_path,
        """\
        import pytest


        def test_unmarked():
            pass


        @pytest.mark.requirement("CFR11.10g")
        async def test_marked():
            pass
        """,
        name="test_a.py",
    )
    assert [(t.node_id, t.requirements) for t in collect(tmp_path)] == [
        ("tests/test_a.py::test_marked", ("CFR11.10g",)),
        ("tests/test_b.py::test_by_the_module_alone", ("ANNEX11.9",)),
        ("tests/test_b.py::test_by_the_module_and_itself", ("ANNEX11.9", "CFR11.10e")),
        ("tests/test_b.py::TestSigned::test_inside", ("ANNEX11.9", "CFR11.70", "CFR11.50", "ANNEX11.14")),
    ]


def test_the_command_writes_the_matrix_and_check_fails_once_it_is_stale(tmp_path, monkeypatch):
    from lims.management.commands import traceability as command

    monkeypatch.setattr(command, "ROOT", tmp_path)
    _write_tests(
        tmp_path,
        """\
        import pytest


        @pytest.mark.requirement("CFR11.10e")
        def test_audited():
            pass
        """,
    )
    call_command("traceability")
    written = (tmp_path / MATRIX_PATH).read_text(encoding="utf-8")
    assert "  - `tests/test_sample.py::test_audited`" in written
    assert written.splitlines()[-1] == f"Unmapped clauses: {len(CLAUSES) - 1}"
    call_command("traceability", "--check")

    _write_tests(tmp_path, "def test_audited():\n    pass\n")
    with pytest.raises(CommandError, match="out of date"):
        call_command("traceability", "--check")
    assert (tmp_path / MATRIX_PATH).read_text(encoding="utf-8") == written, "--check writes nothing"
