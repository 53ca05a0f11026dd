"""The traceability matrix: which regulatory clause each feature meets and which tests prove it.

Tests name the clauses they prove with ``@pytest.mark.requirement("<id>", ...)``. The collector reads
those markers straight from the test files with ``ast`` rather than by running pytest, so the matrix
needs no database, no services and no test run, and comes out the same on every machine. A marker
naming an id that is not in the catalogue is an error: a typo must not quietly leave a clause
unproven while the matrix claims otherwise.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = "tests"
MATRIX_PATH = Path("docs") / "validation" / "traceability.md"
MARKER = "requirement"
GAP = "GAP: no test"


@dataclass(frozen=True)
class Clause:
    id: str
    source: str
    requirement: str
    feature: str


CLAUSES: tuple[Clause, ...] = (
    Clause(
        "CFR11.10e",
        "21 CFR 11.10(e)",
        "A secure, computer-generated, time-stamped audit trail records who created, changed or deleted "
        "each record and when; a change never obscures the earlier value, and the trail is kept as long "
        "as the record.",
        "django-simple-history on every model of `lims`, `samples`, `manufacturing` and `api` (users and "
        "groups too); acting user and reason set by the services through `lims.audit.save_audited`, the "
        "system account when no person acts; revert and history editing disabled; append-only trigger "
        "on PostgreSQL (`lims.audit.install_history_guard`).",
    ),
    Clause(
        "CFR11.10f",
        "21 CFR 11.10(f)",
        "Operational checks enforce the permitted sequence of steps and events.",
        "One `*_TRANSITIONS` map beside each status enum, checked by every service before it changes a "
        "status (`samples.services`, `manufacturing.services.*`); steps refused when a prerequisite is "
        "missing (signed eligibility before an aspirate, an accepted aspirate before a batch, released "
        "lots, an approved specification before release testing, every result and deviation settled "
        "before release); `docs/state-diagrams.md` generated from the maps.",
    ),
    Clause(
        "CFR11.10g",
        "21 CFR 11.10(g)",
        "Authority checks ensure that only authorised people use the system, sign, alter a record or "
        "perform an operation.",
        "Roles as groups with permissions from a data migration (`lims.roles`); "
        "`lims.roles.require_permission` inside every service, so pages, admin, API and tasks refuse "
        "alike; the person who made a batch may not release it "
        "(`manufacturing.services.release.batch_release_decide`); API tokens narrowed to one role the "
        "owner holds.",
    ),
    Clause(
        "CFR11.10h",
        "21 CFR 11.10(h)",
        "Device checks determine that a data input or an operational instruction comes from a valid source.",
        "HMAC-signed QR payloads on every label (`lims.labels.label_payload`, `verify_payload`); the "
        "scan page and every scanned step (`lims.services.scan_resolve`, `require_scanned`) refuse "
        "forged, malformed, unknown or wrong-item codes and record each attempt (`ScanAttempt`), "
        "telling QA about refused scans.",
    ),
    Clause(
        "CFR11.50",
        "21 CFR 11.50",
        "A signed record shows the signer's printed name, the date and time of signing and the meaning "
        "of the signature, on screen and on printouts.",
        "`lims.models.Signature` stores printed name, UTC time and meaning; `lims.signatures` allows only "
        "the meanings a record accepts; record pages, the Certificate of Analysis and the batch record "
        "(`manufacturing.documents`) print them.",
    ),
    Clause(
        "CFR11.70",
        "21 CFR 11.70",
        "Signatures are linked to their records so that they cannot be removed, copied or moved to falsify a record.",
        "SHA-256 `record_hash` over the record's canonical content and `content_hash` over the signature "
        "itself (`lims.signatures.signature_apply`), recomputed on every page and document "
        "(`signatures_for`): a later change shows CHANGED AFTER SIGNING; the signature table is "
        "append-only on PostgreSQL.",
    ),
    Clause(
        "CFR11.200",
        "21 CFR 11.200",
        "An electronic signature uses two distinct components, user id and password, used only by their genuine owner.",
        "Every signature re-asks username and password, even inside a session "
        "(`lims.signatures.authenticate_signer`); a person signs only as themself; a wrong password "
        "changes nothing and is recorded (`SignatureFailure`); the fifth failure locks signing.",
    ),
    Clause(
        "CFR11.300",
        "21 CFR 11.300",
        "Controls over identification codes and passwords: unique, safeguarded against unauthorised "
        "use, lost tokens withdrawn, attempts at misuse detected and recorded.",
        "One personal account per person; django-axes locks a login after repeated wrong passwords; "
        "Django password validators (`AUTH_PASSWORD_VALIDATORS`); signing lockout; API and device tokens "
        "stored only as hashes and revocable with a reason (`api.tokens`).",
    ),
    Clause(
        "ANNEX11.7",
        "EU GMP Annex 11 §7",
        "Data are secured physically and electronically against damage, stay accessible, readable and "
        "accurate through the retention period, and are backed up regularly with restores checked.",
        "PostgreSQL with append-only history and signature tables; GMP foreign keys `on_delete=PROTECT`; "
        "documents regenerated byte for byte from the stored records; `manage.py backup` and `manage.py "
        "restore` (`lims.backup`), a restore checked table by table against the backup's manifest.",
    ),
    Clause(
        "ANNEX11.8.2",
        "EU GMP Annex 11 §8.2",
        "Printouts of records supporting batch release show whether any data changed after the original entry.",
        "The Certificate of Analysis and the batch record (`manufacturing.documents`) list changes after "
        "first entry with old → new value and reason, and print THE RECORD CHANGED AFTER IT WAS SIGNED "
        "when a signed record was altered.",
    ),
    Clause(
        "ANNEX11.9",
        "EU GMP Annex 11 §9",
        "GMP-relevant changes and deletions are recorded with their reason in an audit trail that is "
        "readable, exportable and reviewed.",
        "Reasons required by the services (`lims.audit.require_reason`); the audit-trail page and its CSV "
        "export (`lims.views.audit_trail`, `lims.audit.audit_entries`); QA's release review in the admin "
        "lists the changes after first entry.",
    ),
    Clause(
        "ANNEX11.12",
        "EU GMP Annex 11 §12",
        "Logical controls restrict access to authorised people; changes to access rights are recorded; "
        "the identity of whoever enters or changes data is kept.",
        "Login required on every page and API endpoint; role permissions; idle session timeout; login "
        "lockout (django-axes); production settings with secure cookies, HSTS and security headers "
        "(`lims.settings`, `check --deploy`); group membership audited.",
    ),
    Clause(
        "ANNEX11.14",
        "EU GMP Annex 11 §14",
        "Electronic signatures carry the weight of a handwritten one, are permanently linked to their "
        "record, and include the date and time they were applied.",
        "`lims.signatures` (re-authentication, meaning, reason, UTC time, hashes binding record and "
        "signature); signed steps: eligibility, protocol and specification approval, QC invalidation, "
        "deviation closure, batch release, dose verification, infusion.",
    ),
    Clause(
        "CFR1271.290",
        "21 CFR 1271.290",
        "Each product has a distinct identification code relating it to its donor and to all its "
        "records, traceable from donor to final disposition and back; autologous products say so on "
        "the label.",
        "Subject code carried by every label (wristband, aspirate tube, flask, lot, product bag) "
        "(`lims.services.label_create`); custody hand-overs on one timeline (`lims.services."
        "custody_record`); flask lineage and lot usage per batch (`manufacturing.selectors.lineage`, "
        "`recall_impact`); FOR AUTOLOGOUS USE ONLY on bag labels and documents; FHIR export linking "
        "subject, product and infusion.",
    ),
    Clause(
        "FACTJACIE.BEDSIDE",
        "FACT-JACIE bedside verification",
        "Before administration two qualified people check the patient's identity against the product "
        "label at the bedside; any mismatch stops the infusion.",
        "`manufacturing.services.infusion.bedside_verify`: wristband and bag scanned, a second "
        "clinician re-authenticates, hard stops on wrong patient, forged code, unreleased or expired "
        "product, unverified dose or the same person twice, each check recorded (`BedsideCheck`); "
        "the full-screen hard stop on the bedside page.",
    ),
)

CLAUSE_IDS: frozenset[str] = frozenset(clause.id for clause in CLAUSES)


class TraceabilityError(ValueError):
    """A requirement marker the matrix cannot use: an unknown id, or a marker placed where it is not read."""


@dataclass(frozen=True)
class MarkedTest:
    node_id: str
    requirements: tuple[str, ...]


# --- reading the markers ------------------------------------------------------------------------


def _is_requirement_mark(node: ast.AST) -> bool:
    """`pytest.mark.requirement` or `mark.requirement`, however pytest was imported."""
    if not (isinstance(node, ast.Attribute) and node.attr == MARKER):
        return False
    owner = node.value
    return (isinstance(owner, ast.Attribute) and owner.attr == "mark") or (
        isinstance(owner, ast.Name) and owner.id == "mark"
    )


def _ids_of(call: ast.Call, where: str) -> tuple[str, ...]:
    if call.keywords or not call.args:
        raise TraceabilityError(f'{where}: write the marker as requirement("<id>", ...) with at least one id')
    ids = []
    for arg in call.args:
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            raise TraceabilityError(f"{where}: requirement ids must be string literals")
        if arg.value not in CLAUSE_IDS:
            known = ", ".join(clause.id for clause in CLAUSES)
            raise TraceabilityError(f"{where}: unknown requirement id {arg.value!r}; known ids: {known}")
        ids.append(arg.value)
    return tuple(ids)


def _marks_in(expression: ast.expr | None, path: str, read: set[int]) -> tuple[str, ...]:
    """Requirement ids in a decorator or a `pytestmark` value (one mark, or a list or tuple of marks)."""
    if expression is None:
        return ()
    items = expression.elts if isinstance(expression, ast.List | ast.Tuple) else [expression]
    found: list[str] = []
    for item in items:
        if isinstance(item, ast.Call) and _is_requirement_mark(item.func):
            found += _ids_of(item, f"{path}:{item.lineno}")
            read.add(id(item.func))
    return tuple(found)


def _pytestmark(body: list[ast.stmt], path: str, read: set[int]) -> tuple[str, ...]:
    for statement in body:
        if isinstance(statement, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in statement.targets
        ):
            return _marks_in(statement.value, path, read)
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and statement.target.id == "pytestmark"
        ):
            return _marks_in(statement.value, path, read)
    return ()


def _unique(ids: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(ids))


def _decorator_marks(
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, path: str, read: set[int]
) -> list[str]:
    return [i for decorator in node.decorator_list for i in _marks_in(decorator, path, read)]


def _tests_in(
    body: list[ast.stmt], path: str, prefix: str, inherited: tuple[str, ...], read: set[int]
) -> Iterator[MarkedTest]:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            ids = _unique([*inherited, *_decorator_marks(node, path, read)])
            if ids:
                yield MarkedTest(node_id=f"{prefix}::{node.name}", requirements=ids)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            marks = _unique([*inherited, *_decorator_marks(node, path, read), *_pytestmark(node.body, path, read)])
            yield from _tests_in(node.body, path, f"{prefix}::{node.name}", marks, read)


def _check_every_marker_was_read(tree: ast.Module, path: str, read: set[int]) -> None:
    """A marker anywhere else (inside a pytest.param, on a helper or a fixture) would be lost silently."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_requirement_mark(node) and id(node) not in read:
            raise TraceabilityError(
                f"{path}:{node.lineno}: put requirement(...) markers on a test function, a test class or "
                "the module's pytestmark, where the traceability matrix reads them"
            )


def collect_file(file: Path, root: Path) -> list[MarkedTest]:
    """The tests of one file that carry requirement markers, in the order they are written."""
    path = file.relative_to(root).as_posix()
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=path)
    read: set[int] = set()
    found = list(_tests_in(tree.body, path, path, _pytestmark(tree.body, path, read), read))
    _check_every_marker_was_read(tree, path, read)
    return found


def collect(root: Path = ROOT) -> list[MarkedTest]:
    """Every marked test under `tests/`, ordered by file path and then by position in the file."""
    files = sorted((root / TESTS_DIR).rglob("test_*.py"), key=lambda f: f.relative_to(root).as_posix())
    return [test for file in files for test in collect_file(file, root)]


# --- writing the matrix -------------------------------------------------------------------------


def tests_by_clause(tests: Iterable[MarkedTest]) -> dict[str, list[str]]:
    by_clause: dict[str, list[str]] = {clause.id: [] for clause in CLAUSES}
    for test in tests:
        for clause_id in test.requirements:
            by_clause[clause_id].append(test.node_id)
    return by_clause


def gaps(tests: Iterable[MarkedTest]) -> list[Clause]:
    by_clause = tests_by_clause(tests)
    return [clause for clause in CLAUSES if not by_clause[clause.id]]


HEADER = """\
# Traceability matrix

Generated by `python manage.py traceability` from the clause catalogue in `lims/traceability.py` and
the `@pytest.mark.requirement(...)` markers on the tests; do not edit it by hand. After adding or
changing a marker, run the command again and commit this file: `python manage.py traceability --check`
and `tests/reliability/test_traceability.py` fail while it is out of date.

Each clause below names what it requires (in our words), the Stroma feature that meets it, and the
tests that prove it. A clause without a test is listed as a gap, here and in the summary at the end.
"""


def render(tests: list[MarkedTest]) -> str:
    by_clause = tests_by_clause(tests)
    missing = gaps(tests)
    lines = [HEADER, "| clause | source | tests |", "|---|---|---|"]
    for clause in CLAUSES:
        count = len(by_clause[clause.id])
        lines.append(f"| [{clause.id}](#{_anchor(clause.id)}) | {clause.source} | {count or GAP} |")
    for clause in CLAUSES:
        lines += [
            "",
            f"## {clause.id}",
            "",
            f"- **Source:** {clause.source}",
            f"- **Requirement:** {clause.requirement}",
            f"- **Feature:** {clause.feature}",
            "- **Tests:**" + ("" if by_clause[clause.id] else f" {GAP}"),
        ]
        lines += [f"  - `{node_id}`" for node_id in by_clause[clause.id]]
    lines += ["", "## Gaps", ""]
    lines += [f"- {clause.id} ({clause.source}): {GAP}" for clause in missing] or ["None: every clause has a test."]
    lines += ["", f"Unmapped clauses: {len(missing)}"]
    return "\n".join(lines) + "\n"


def _anchor(clause_id: str) -> str:
    """The heading anchor GitHub makes for `## <clause id>`: lower case, dots dropped."""
    return clause_id.lower().replace(".", "")


def generate(root: Path = ROOT) -> str:
    return render(collect(root))
