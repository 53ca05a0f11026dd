"""Labels: a genuine label opens its item; anything else, down to one wrong character, opens nothing.

Each test reads as a step of the label protocol: sign the code, print it (QR image, A4 sheet,
thermal ZPL), scan it back, and refuse whatever was typed wrongly, altered or signed elsewhere.
No database is needed.

The ZPL golden files live in ``tests/lims/golden/``. After a deliberate change to the ZPL
layout, look at the new output, then rewrite them with::

    STROMA_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/lims/test_labels.py -k golden -p no:cacheprovider
"""

from __future__ import annotations

import datetime
import io
import os
import random
import re
import string
import xml.etree.ElementTree as ET
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

import pytest
import zxingcpp
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from pypdf import PdfReader

from lims.errors import DomainError
from lims.labels import (
    FORGED_MESSAGE,
    MALFORMED_MESSAGE,
    PAYLOAD_VERSION,
    LabelError,
    LabelText,
    label_payload,
    label_sheet_html,
    label_sheet_pdf,
    label_text_for,
    label_zpl,
    qr_png,
    qr_svg,
    verify_payload,
)
from lims.selectors import screen_qr_url

GOLDEN = Path(__file__).parent / "golden"
# The golden files are signed under this key, so that they do not depend on the site's key.
GOLDEN_KEY = "stroma-golden-files-only"

# What a keyboard-wedge scanner may type, and so what a mutation may put into a payload.
PAYLOAD_ALPHABET = string.ascii_uppercase + string.digits + "-."
PAYLOAD_CHARACTERS = re.compile(r"[A-Z0-9.-]+")

CODES = [
    "FL-000123",
    "WB-RAMSC-007",
    "AS-000001",
    "QC-2025-0042",
    "PB-RAMSC-007-01",
    "X",
    "9" * 32,
]

# Any code a label may carry, for the property tests.
label_codes = st.from_regex(r"[A-Z0-9-]{1,32}", fullmatch=True)


def _label(code: str, *, kind: str = "Flask", subject_code: str = "RAMSC-007", statement: str = "") -> LabelText:
    return LabelText(
        code=code,
        kind=kind,
        subject_code=subject_code,
        date=datetime.date(2025, 3, 4),
        payload=label_payload(code),
        statement=statement,
    )


def _mutate(payload: str, rng: random.Random) -> str:
    """One substitution, insertion or deletion, using only characters a scanner could type."""
    operation = rng.choice(["substitute", "insert", "delete"])
    if operation == "substitute":
        index = rng.randrange(len(payload))
        replacement = rng.choice([c for c in PAYLOAD_ALPHABET if c != payload[index]])
        return payload[:index] + replacement + payload[index + 1 :]
    if operation == "insert":
        index = rng.randrange(len(payload) + 1)
        return payload[:index] + rng.choice(PAYLOAD_ALPHABET) + payload[index:]
    index = rng.randrange(len(payload))
    return payload[:index] + payload[index + 1 :]


def _decode(image: Image.Image) -> list[str]:
    return [
        barcode.text for barcode in zxingcpp.read_barcodes(image) if barcode.format == zxingcpp.BarcodeFormat.QRCode
    ]


def _pdf_text(pdf: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() for page in reader.pages)
    return len(reader.pages), " ".join(text.split())


# --- signing and verifying --------------------------------------------------------------


@pytest.mark.requirement("CFR11.10h")
@pytest.mark.parametrize("code", CODES)
def test_a_signed_label_scans_back_to_its_code(code):
    payload = label_payload(code)
    assert verify_payload(payload) == code
    assert PAYLOAD_CHARACTERS.fullmatch(payload), "only characters a wedge scanner types on any layout"
    version, signed_code, mac = payload.split(".")
    assert (version, signed_code, len(mac)) == (PAYLOAD_VERSION, code, 16)
    assert re.fullmatch(r"[A-Z2-7]{16}", mac), "the MAC is RFC 4648 base32 without padding"


def test_signing_is_deterministic_so_a_reprint_carries_the_same_payload():
    assert label_payload("FL-000123") == label_payload("FL-000123")
    assert label_payload("FL-000123") != label_payload("FL-000124")


@pytest.mark.requirement("CFR11.10h")
@pytest.mark.parametrize(
    "scanned",
    [
        pytest.param("{p}\r\n", id="scanner-sends-enter"),
        pytest.param("{p}\n", id="scanner-sends-line-feed"),
        pytest.param("  {p}\t", id="surrounding-whitespace"),
        pytest.param("{lower}", id="caps-lock-on"),
        pytest.param("{lower}\r\n", id="caps-lock-on-with-enter"),
    ],
)
def test_what_a_scanner_really_sends_still_opens_the_label(scanned):
    payload = label_payload("WB-RAMSC-007")
    assert verify_payload(scanned.format(p=payload, lower=payload.lower())) == "WB-RAMSC-007"


@pytest.mark.parametrize("code", ["", "fl-000123", "FL_000123", "FL 000123", "FL.000123", "FL/1", "A" * 33, "Ä-1"])
def test_a_code_a_scanner_could_not_type_is_never_signed(code):
    with pytest.raises(ValueError, match="label code"):
        label_payload(code)


def test_no_label_is_signed_without_a_key():
    with override_settings(STROMA_LABEL_KEY=""), pytest.raises(ValueError, match="STROMA_LABEL_KEY"):
        label_payload("FL-000123")


@pytest.mark.requirement("CFR11.10h")
def test_a_single_character_change_is_rejected():
    """1,000 seeded substitutions, insertions and deletions: not one of them opens anything."""
    rng = random.Random(20250304)
    payloads = [label_payload(code) for code in CODES]
    outcomes = {"malformed": 0, "forged": 0}
    rejected = 0
    for _ in range(1000):
        payload = rng.choice(payloads)
        mutated = _mutate(payload, rng)
        assert mutated != payload
        with pytest.raises(LabelError) as refused:
            verify_payload(mutated)
        assert refused.value.code in outcomes
        outcomes[refused.value.code] += 1
        rejected += 1
    assert rejected == 1000
    assert outcomes["malformed"] > 0, "e.g. a dot inserted, a MAC one character short or long"
    assert outcomes["forged"] > 0, "e.g. a changed character in the code: the shape holds, the MAC does not"
    print(f"label mutations rejected: {rejected}/1000")
    print(f"  as malformed: {outcomes['malformed']}, as forged: {outcomes['forged']}")


@pytest.mark.requirement("CFR11.10h")
@hypothesis_settings(max_examples=300, database=None, deadline=None)
@given(code=label_codes, data=st.data())
def test_any_substituted_character_in_any_payload_is_rejected(code, data):
    payload = label_payload(code)
    index = data.draw(st.integers(min_value=0, max_value=len(payload) - 1), label="index")
    replacement = data.draw(st.sampled_from(PAYLOAD_ALPHABET).filter(lambda c: c != payload[index]), label="char")
    with pytest.raises(LabelError):
        verify_payload(payload[:index] + replacement + payload[index + 1 :])


@hypothesis_settings(max_examples=200, database=None, deadline=None)
@given(code=label_codes)
def test_any_code_of_the_label_alphabet_round_trips(code):
    payload = label_payload(code)
    assert PAYLOAD_CHARACTERS.fullmatch(payload)
    assert verify_payload(payload) == code


@pytest.mark.requirement("CFR11.10h")
def test_a_label_signed_under_another_key_is_refused_as_forged():
    with override_settings(STROMA_LABEL_KEY="another-site-entirely"):
        foreign = label_payload("FL-000123")
        assert verify_payload(foreign) == "FL-000123", "genuine at the site that signed it"
    with pytest.raises(LabelError) as refused:
        verify_payload(foreign)
    assert refused.value.code == "forged"
    assert refused.value.message == FORGED_MESSAGE
    assert isinstance(refused.value, DomainError), "views show it like any other refused step"


@pytest.mark.requirement("CFR11.10h")
def test_a_hand_typed_code_with_a_made_up_signature_is_refused_as_forged():
    with pytest.raises(LabelError) as refused:
        verify_payload("S1.FL-000123.AAAAAAAAAAAAAAAA")
    assert refused.value.code == "forged"
    assert "Nothing was opened" in str(refused.value)


@pytest.mark.requirement("CFR11.10h")
@pytest.mark.parametrize(
    "scanned",
    [
        pytest.param("", id="empty"),
        pytest.param("   \r\n", id="only-enter"),
        pytest.param("hello world", id="garbage"),
        pytest.param("FL-000123", id="bare-code"),
        pytest.param("https://stroma.example/labels/FL-000123/", id="url"),
        pytest.param("S1.FL-000123", id="no-mac"),
        pytest.param("{p}.", id="trailing-dot"),
        pytest.param(".{p}", id="leading-dot"),
        pytest.param("S1.FL.000123.{mac}", id="extra-dot-in-code"),
        pytest.param("S1..{mac}", id="empty-code"),
        pytest.param("s1.FL-000123.{mac}", id="lowercase-version"),
        pytest.param("S2.FL-000123.{mac}", id="unknown-version"),
        pytest.param("S1.Fl-000123.{mac}", id="mixed-case"),
        pytest.param("S1.FL-000123.{mac_short}", id="mac-too-short"),
        pytest.param("S1.FL-000123.{mac}A", id="mac-too-long"),
        pytest.param("S1.FL-000123.0000000000000000", id="mac-not-base32"),
        pytest.param("S1.FL-000123.{mac}=", id="base32-padding"),
        pytest.param("S1.FL-000123 .{mac}", id="inner-space"),
        pytest.param("S1.FL\u2013000123.{mac}", id="en-dash-from-autocorrect"),
        pytest.param("\u017f1.FL-000123.{mac}", id="long-s-that-upper-cases-to-S"),
        pytest.param("S1.FL\u00df000123.{mac}", id="qwertz-layout-turns-dash-into-eszett"),
        pytest.param("S1.{long}.AAAAAAAAAAAAAAAA", id="code-too-long"),
    ],
)
def test_something_that_is_not_a_stroma_label_is_refused_as_malformed(scanned):
    mac = label_payload("FL-000123").rsplit(".", 1)[1]
    text = scanned.format(p=label_payload("FL-000123"), mac=mac, mac_short=mac[:-1], long="A" * 33)
    with pytest.raises(LabelError) as refused:
        verify_payload(text)
    assert refused.value.code == "malformed"
    assert refused.value.message == MALFORMED_MESSAGE


# --- QR images --------------------------------------------------------------------------


@pytest.mark.requirement("CFR11.10h", "CFR1271.290")
@pytest.mark.parametrize("code", CODES)
def test_the_printed_qr_decodes_back_to_a_payload_that_verifies(code):
    payload = label_payload(code)
    decoded = _decode(Image.open(io.BytesIO(qr_png(payload))))
    assert decoded == [payload]
    assert verify_payload(decoded[0]) == code


@pytest.mark.parametrize("box_size", [1, 3, 12])
def test_the_qr_decodes_at_every_size_we_draw_it(box_size):
    payload = label_payload("PB-RAMSC-007-01")
    image = Image.open(io.BytesIO(qr_png(payload, box_size=box_size)))
    assert image.format == "PNG"
    assert image.size[0] == image.size[1]
    assert image.size[0] % box_size == 0
    assert _decode(image) == [payload]


def test_the_qr_svg_is_an_inline_svg_element_that_decodes():
    payload = label_payload("WB-RAMSC-007")
    svg = qr_svg(payload)
    assert svg.startswith("<svg "), "no XML declaration, so it can be inlined in HTML"
    assert "<?xml" not in svg
    assert 'id="' not in svg, "no fixed id: a page may hold many labels"
    assert _decode(_svg_image(svg)) == [payload]


def _svg_image(svg: str) -> Image.Image:
    """Draw the path's squares (qrcode writes one "Mx,yHx'Vy'Hxz" per dark module) as a bitmap to decode."""
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    size = float(root.attrib["viewBox"].split()[2])
    scale = 8
    image = Image.new("L", (round(size * scale), round(size * scale)), 255)
    draw = ImageDraw.Draw(image)
    squares = re.findall(r"M([\d.]+),([\d.]+)H([\d.]+)V([\d.]+)H[\d.]+z", root[0].attrib["d"])
    assert squares
    for x0, y0, x1, y1 in squares:
        box = [round(float(v) * scale) for v in (x0, y0, x1, y1)]
        draw.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], fill=0)
    return image


# --- The symbol on an item's page, served apart from the page ----------------------------------


def test_an_item_page_links_its_labels_symbol_which_decodes_and_is_kept_by_the_browser(client, operator, subject):
    client.force_login(operator)
    code = f"WB-{subject.code}"
    page = client.get(subject.get_absolute_url()).content.decode()
    src = re.search(r'<img class="qr-symbol" src="([^"]+)"', page)
    assert src is not None, "the page shows the label's symbol"
    assert src.group(1).startswith(reverse("label-qr", args=[code]) + "?v=")
    response = client.get(src.group(1))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Cache-Control"] == "private, max-age=31536000, immutable"
    assert _decode(_svg_image(response.content.decode())) == [label_payload(code)]


def test_the_symbols_url_changes_with_the_label_key(subject):
    code = f"WB-{subject.code}"
    before = screen_qr_url(code)
    with override_settings(STROMA_LABEL_KEY="another-site-entirely"):
        assert screen_qr_url(code) != before


def test_no_symbol_is_drawn_for_a_code_nobody_labelled_nor_for_someone_signed_out(client, operator, subject):
    """Otherwise the URL would sign any made-up code: a genuine-looking label for nothing."""
    assert client.get(reverse("label-qr", args=[f"WB-{subject.code}"]))["Location"].startswith(reverse("login"))
    client.force_login(operator)
    assert client.get(reverse("label-qr", args=["FL-999999"])).status_code == 404
    assert client.post(reverse("label-qr", args=[f"WB-{subject.code}"])).status_code == 405


# --- A4 label sheet ---------------------------------------------------------------------


@pytest.mark.requirement("CFR1271.290")
def test_a_sheet_of_96_labels_prints_every_code_and_statement_on_three_pages():
    labels = [_label(f"FL-{n:06d}", statement="FOR AUTOLOGOUS USE ONLY") for n in range(96)]
    pdf = label_sheet_pdf(labels)
    assert pdf.startswith(b"%PDF-")
    pages, text = _pdf_text(pdf)
    assert pages == 3, "4 x 8 labels per A4 page"
    for label in labels:
        assert label.code in text
    assert text.count("FOR AUTOLOGOUS USE ONLY") == 96
    assert "Subject RAMSC-007" in text
    assert "2025-03-04" in text


@pytest.mark.requirement("CFR11.10h", "CFR1271.290")
def test_every_qr_on_the_sheet_decodes_to_its_own_labels_payload():
    labels = [_label(code) for code in CODES]
    reader = PdfReader(io.BytesIO(label_sheet_pdf(labels)))
    decoded = [text for page in reader.pages for image in page.images for text in _decode(image.image)]
    assert sorted(decoded) == sorted(label.payload for label in labels)
    assert sorted(verify_payload(text) for text in decoded) == sorted(CODES)


@pytest.mark.parametrize(("count", "pages"), [(1, 1), (32, 1), (33, 2)])
def test_labels_fill_a_page_before_a_new_one_starts(count, pages):
    labels = [_label(f"QC-{n:04d}") for n in range(count)]
    assert _pdf_text(label_sheet_pdf(labels))[0] == pages


def test_the_sheet_shows_text_as_text_and_never_as_markup():
    label = _label("FL-000123", kind="<script>alert(1)</script>", statement="A & B")
    html = label_sheet_html([label])
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "A &amp; B" in html


def test_the_sheet_references_nothing_outside_itself():
    html = label_sheet_html([_label("FL-000123")])
    assert not re.search(r"(?:src|href)=\"(?!data:)", html)
    assert "url(" not in html
    assert "@import" not in html


def test_a_long_code_and_a_long_statement_still_print_in_full():
    code = "PB-RAMSC-007-A1B2C3D4E5F6G7H8I9J"
    statement = "CAUTION: NEW DRUG - LIMITED BY FEDERAL (OR UNITED STATES) LAW TO INVESTIGATIONAL USE."
    _, text = _pdf_text(label_sheet_pdf([_label(code, kind="Product bag", statement=statement)]))
    assert code in text
    assert statement in text


@pytest.mark.requirement("CFR11.10h", "CFR1271.290")
@pytest.mark.parametrize("render", [label_sheet_pdf, lambda labels: label_zpl(labels[0])], ids=["sheet", "zpl"])
def test_a_label_whose_qr_names_another_item_is_not_printed(render):
    mixed_up = LabelText(
        code="FL-000124", kind="Flask", subject_code="", date=datetime.date(2025, 3, 4), payload=label_payload("FL-1")
    )
    with pytest.raises(ValueError, match="names a different item"):
        render([mixed_up])


@pytest.mark.parametrize("render", [label_sheet_pdf, lambda labels: label_zpl(labels[0])], ids=["sheet", "zpl"])
def test_a_statement_too_long_for_the_label_is_refused_rather_than_cut_off(render):
    with pytest.raises(ValueError, match="would be cut off"):
        render([_label("FL-000123", statement="FOR AUTOLOGOUS USE ONLY. " * 6)])


def test_an_empty_sheet_is_refused():
    with pytest.raises(ValueError, match="at least one label"):
        label_sheet_pdf([])


# --- ZPL for thermal printers -----------------------------------------------------------

GOLDEN_LABELS = {
    "flask": {
        "code": "FL-000123",
        "kind": "Flask",
        "subject_code": "RAMSC-007",
        "statement": "FOR AUTOLOGOUS USE ONLY",
    },
    "product_bag": {
        "code": "PB-RAMSC-007-01",
        "kind": "Product bag",
        "subject_code": "RAMSC-007",
        "statement": "FOR AUTOLOGOUS USE ONLY. DO NOT IRRADIATE.",
    },
    "wristband": {"code": "WB-RAMSC-007", "kind": "Wristband", "subject_code": "", "statement": ""},
}


@pytest.mark.parametrize("name", sorted(GOLDEN_LABELS))
def test_zpl_matches_the_golden_file(name):
    with override_settings(STROMA_LABEL_KEY=GOLDEN_KEY):
        zpl = label_zpl(_label(**GOLDEN_LABELS[name]))
    golden = GOLDEN / f"{name}.zpl"
    if os.environ.get("STROMA_UPDATE_GOLDEN") == "1":
        golden.write_text(zpl, encoding="ascii", newline="\n")
    assert zpl == golden.read_text(encoding="ascii"), f"regenerate with STROMA_UPDATE_GOLDEN=1 if intended: {golden}"


@pytest.mark.requirement("CFR11.10h", "CFR1271.290")
def test_zpl_is_one_label_with_the_signed_payload_in_its_qr():
    label = _label("FL-000123", statement="FOR AUTOLOGOUS USE ONLY")
    zpl = label_zpl(label)
    assert zpl.startswith("^XA\n")
    assert zpl.endswith("^XZ\n")
    assert zpl.count("^XA") == zpl.count("^XZ") == 1
    assert f"^BQN,2,5^FDMA,{label.payload}^FS" in zpl
    assert "^PW406" in zpl, "2 inches at 203 dpi"
    assert "^LL203" in zpl, "1 inch at 203 dpi"
    assert label_zpl(label) == zpl, "deterministic"


def test_zpl_text_cannot_inject_printer_commands():
    label = _label("FL-000123", kind="Bag ^XZ~JR", subject_code="RAMSC-007", statement="A_B\n^FO0,0~DG")
    zpl = label_zpl(label)
    assert zpl.isascii()
    for field in re.findall(r"\^FD(.*?)\^FS", zpl):
        assert "^" not in field
        assert "~" not in field
    assert "^FDBag _5EXZ_7EJR^FS" in zpl
    assert "^FDA_5FB _5EFO0,0_7EDG^FS" in zpl, "line breaks become spaces; ^ ~ _ become ^FH hex"
    assert zpl.count("^XZ") == 1


def test_zpl_narrows_the_font_so_the_longest_code_and_subject_print_in_full():
    code, subject = "PB-" + "7" * 29, "S" * 32
    zpl = label_zpl(_label(code, subject_code=subject))
    code_field = re.search(rf"\^A0N,30,(\d+)\^FB213,1,0,L,0\^FH_\^FD{code}\^FS", zpl)
    subject_field = re.search(rf"\^A0N,22,(\d+)\^FB213,1,0,L,0\^FH_\^FDSubject {subject}\^FS", zpl)
    assert code_field
    assert subject_field
    assert 8 <= int(code_field.group(1)) < 30
    assert 8 <= int(subject_field.group(1)) < 22


def test_zpl_refuses_a_line_too_long_to_read_rather_than_cutting_it_off():
    with pytest.raises(ValueError, match="too long for one line"):
        label_zpl(_label("FL-000123", kind="Cryopreserved final product bag, second aliquot"))


def test_zpl_writes_letters_outside_ascii_as_utf8_hex():
    zpl = label_zpl(_label("FL-000123", kind="Flasche \u00fcberpr\u00fcft"))
    assert zpl.isascii()
    assert "^FDFlasche _C3_BCberpr_C3_BCft^FS" in zpl
    assert "^CI28" in zpl


# --- from a label record ------------------------------------------------------------------


@dataclass
class _FakeLabel:
    code: str
    subject_code: str
    created_at: datetime.datetime
    kind_display: str = "Wristband"

    def get_kind_display(self) -> str:
        return self.kind_display


def test_label_text_takes_the_local_calendar_day_and_signs_the_code():
    created = datetime.datetime(2025, 3, 4, 22, 30, tzinfo=datetime.UTC)
    record = _FakeLabel(code="WB-RAMSC-007", subject_code="RAMSC-007", created_at=created)
    with timezone.override(zoneinfo.ZoneInfo("Pacific/Auckland")):
        text = label_text_for(record)
    assert text == LabelText(
        code="WB-RAMSC-007",
        kind="Wristband",
        subject_code="RAMSC-007",
        date=datetime.date(2025, 3, 5),
        payload=label_payload("WB-RAMSC-007"),
        statement="",
    )
    assert verify_payload(text.payload) == record.code


def test_label_text_carries_a_statement_when_the_record_has_one():
    created = datetime.datetime(2025, 3, 4, 9, 0, tzinfo=datetime.UTC)
    record = _FakeLabel(code="PB-RAMSC-007-01", subject_code="", created_at=created, kind_display="Product bag")
    record.statement = "FOR AUTOLOGOUS USE ONLY"  # type: ignore[attr-defined]
    text = label_text_for(record)
    assert (text.kind, text.subject_code, text.statement) == ("Product bag", "", "FOR AUTOLOGOUS USE ONLY")
