"""Signed QR payloads and the labels that carry them.

A label is the only link between a physical tube, flask, bag or wristband and its record, so
a misread must never open the wrong record. The QR therefore carries ``S1.<code>.<MAC>``:

* Only ``A-Z``, ``0-9``, ``-`` and ``.`` appear. A keyboard-wedge scanner "types" what it
  reads as key presses, and these are the characters it types reliably whatever the keyboard
  setting (``/``, ``:`` and ``_`` need Shift or move between layouts). They are also all in
  the QR alphanumeric mode, which keeps the symbol small enough for a 1-inch label.
* The MAC is an HMAC-SHA256 under ``settings.STROMA_LABEL_KEY``, cut to 80 bits. A code
  typed by hand, mistyped, or made up by someone outside the system does not verify, and
  any single-character substitution, insertion or deletion breaks either the shape or the
  MAC.

Rendering lives here too (SVG and PNG for screens, a WeasyPrint A4 sheet for office
printers, ZPL for thermal label printers) so that every output refuses a label whose QR
names a different item than its printed text.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
import hmac
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.utils import timezone
from django.utils.html import escape
from PIL import Image
from qrcode.constants import ERROR_CORRECT_M

from lims.errors import DomainError

PAYLOAD_VERSION = "S1"
MAC_LENGTH = 16
QR_QUIET_ZONE = 4  # modules of white around the symbol, the minimum the QR standard asks for
CODE_MAX_LENGTH = 32

MALFORMED_MESSAGE = (
    "This is not a Stroma label. Scan the QR code on the item's label, or check that the scanner is set to a "
    "US/UK keyboard."
)
FORGED_MESSAGE = (
    "This label's code does not verify: it was typed wrongly or is not a genuine Stroma label. Nothing was "
    "opened; the attempt has been recorded."
)

_CODE_RE = re.compile(rf"[A-Z0-9-]{{1,{CODE_MAX_LENGTH}}}")
# The version is matched literally so that a future "S2" is "not ours" rather than "forged".
_PAYLOAD_RE = re.compile(
    rf"{re.escape(PAYLOAD_VERSION)}\.(?P<code>[A-Z0-9-]{{1,{CODE_MAX_LENGTH}}})\.(?P<mac>[A-Z2-7]{{{MAC_LENGTH}}})"
)


class LabelError(DomainError):
    """A scanned or typed payload that must not open anything.

    ``code`` is ``"malformed"`` when the text is not shaped like a Stroma label at all (wrong
    characters, keyboard layout, version), and ``"forged"`` when it is shaped right but the MAC
    does not match, which is the case worth recording as a possible tampering attempt.
    """


def _mac(code: str) -> str:
    key = settings.STROMA_LABEL_KEY
    if not isinstance(key, str) or not key:
        # An empty key would make every MAC public knowledge; fail loudly instead of signing.
        raise ValueError("settings.STROMA_LABEL_KEY must be a non-empty string")
    message = f"stroma-label:{PAYLOAD_VERSION}:{code}".encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii")[:MAC_LENGTH]


def label_payload(code: str) -> str:
    """Sign a label code; raises ``ValueError`` for a code the payload alphabet cannot carry."""
    if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
        raise ValueError(f"a label code is 1 to {CODE_MAX_LENGTH} characters of A-Z, 0-9 and '-': {code!r}")
    return f"{PAYLOAD_VERSION}.{code}.{_mac(code)}"


def verify_payload(payload: str) -> str:
    """Return the label code of a genuine payload, or raise :class:`LabelError`.

    Scanners end with Enter and may add spaces, so surrounding whitespace is dropped. With
    caps lock on, a wedge scanner sends the whole payload in lower case; that is accepted
    because the MAC is checked over the upper-cased text. Mixed case is never produced by a
    scanner (only by hand editing) and is refused as malformed, and so is anything non-ASCII,
    because ``str.upper`` would turn characters such as U+017F into a valid-looking "S".
    """
    if not isinstance(payload, str):
        raise LabelError(MALFORMED_MESSAGE, code="malformed")
    text = payload.strip()
    if not text.isascii() or (text != text.upper() and text != text.lower()):
        raise LabelError(MALFORMED_MESSAGE, code="malformed")
    match = _PAYLOAD_RE.fullmatch(text.upper())
    if match is None:
        raise LabelError(MALFORMED_MESSAGE, code="malformed")
    code, mac = match.group("code"), match.group("mac")
    if not hmac.compare_digest(mac.encode("ascii"), _mac(code).encode("ascii")):
        raise LabelError(FORGED_MESSAGE, code="forged")
    return code


@functools.lru_cache(maxsize=512)
def _qr(payload: str) -> qrcode.QRCode:
    """The symbol for a payload, cached because a label is usually shown on screen and then printed.

    Error correction M survives a scuffed or frosted label and keeps the longest payload (54
    alphanumeric characters) at version 3. The mask is the one with the lowest penalty, as the
    QR standard asks; that choice is most of the cost of a symbol, and it is not worth trading
    scan reliability for speed. Callers must not mutate the returned object.
    """
    # box_size 10 is what qrcode's SVG images draw as 1 mm per module; PNGs are drawn from the matrix.
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=10, border=QR_QUIET_ZONE)
    qr.add_data(payload)
    qr.make(fit=True)
    return qr


def qr_svg(payload: str) -> str:
    """Inline ``<svg>`` markup (1 mm per module), without an XML declaration so it can sit inside HTML."""
    image = _qr(payload).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    if image.path is not None:
        # qrcode gives every path the same id; two labels on one page would be invalid HTML.
        image.path.attrib.pop("id", None)
    svg = image.to_string(encoding="unicode")
    assert isinstance(svg, str)
    return svg


def _qr_image(payload: str, box_size: int) -> Image.Image:
    """Greyscale image of the symbol with its quiet zone, drawn with Pillow straight from the module matrix.

    The same pixels as qrcode's own PIL image in a fraction of the time, which matters for a
    sheet of 96 labels.
    """
    if box_size < 1:
        raise ValueError("box_size must be at least 1")
    matrix = _qr(payload).get_matrix()
    size = len(matrix)
    image = Image.frombytes("L", (size, size), bytes(0 if dark else 255 for row in matrix for dark in row))
    if box_size > 1:
        image = image.resize((size * box_size, size * box_size), Image.Resampling.NEAREST)
    return image


def qr_png(payload: str, *, box_size: int = 8) -> bytes:
    """1-bit PNG, ``box_size`` pixels per module with a 4-module quiet zone, for places that cannot inline SVG."""
    buffer = io.BytesIO()
    _qr_image(payload, box_size).convert("1", dither=Image.Dither.NONE).save(buffer, format="PNG")
    return buffer.getvalue()


def qr_png_data_uri(payload: str, *, box_size: int = 8) -> str:
    """``data:`` URI of :func:`qr_png`, for HTML that must not fetch anything (e-mail, the PDF sheet)."""
    return "data:image/png;base64," + base64.b64encode(qr_png(payload, box_size=box_size)).decode("ascii")


@dataclass(frozen=True)
class LabelText:
    """What is printed in human-readable text beside the QR, so the item can be checked by eye.

    ``subject_code`` is the pseudonymous subject code, never a name: labels leave the
    controlled area and are seen by couriers and clinical staff.
    """

    code: str
    kind: str
    subject_code: str
    date: datetime.date
    payload: str
    statement: str = ""


class _Labelled(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def subject_code(self) -> str: ...

    @property
    def created_at(self) -> datetime.datetime: ...

    def get_kind_display(self) -> str: ...


def label_text_for(label: _Labelled) -> LabelText:
    """Build the printed text from a label record.

    Duck-typed rather than importing ``lims.models``, which imports this module; the date is
    the local calendar day, because that is the day written in the batch record.
    """
    return LabelText(
        code=label.code,
        kind=str(label.get_kind_display()),
        subject_code=label.subject_code or "",
        date=timezone.localdate(label.created_at),
        payload=label_payload(label.code),
        statement=str(getattr(label, "statement", "") or ""),
    )


_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _check_printable(label: LabelText, *, statement_max: int) -> None:
    # A label whose QR opens another item than the one named in its text is exactly the
    # mix-up labels exist to prevent, so nothing is printed for it.
    if verify_payload(label.payload) != label.code:
        raise ValueError(f"the QR payload of label {label.code} names a different item")
    if len(_one_line(label.statement)) > statement_max:
        raise ValueError(
            f"the statement on label {label.code} is longer than {statement_max} characters and would be cut off"
        )


# --- A4 sheet ----------------------------------------------------------------------------

SHEET_COLUMNS = 4
SHEET_ROWS = 8
LABELS_PER_SHEET = SHEET_COLUMNS * SHEET_ROWS
# Pixels per module of the sheet's QR images. With ``image-rendering: pixelated`` WeasyPrint
# marks them not to be smoothed; 3 pixels keep edges sharp even in a viewer that smooths anyway.
_SHEET_QR_BOX = 3

# Layout choices are for speed as much as looks: WeasyPrint lays out floats and preformatted
# lines several times faster than flex, grid, tables or absolute positioning, SVG paths are
# slower still than small PNGs, and only the lines that may need it are allowed to wrap.
# Each label clips its content, so nothing can ever print onto the neighbouring label.
# Fonts come from the system through fontconfig; no URL is referenced, so rendering needs no
# network and cannot leak which labels are printed.
_SHEET_CSS = """
@page { size: A4; margin: 10mm 8mm; }
body { margin: 0; font-family: "DejaVu Sans", "Liberation Sans", sans-serif; font-size: 6.5pt; line-height: 1.25; }
.sheet { display: flow-root; break-after: page; }
.sheet:last-child { break-after: auto; }
.label { float: left; box-sizing: border-box; width: 48.5mm; height: 34.6mm; padding: 1.5mm; overflow: hidden;
         white-space: pre; }
.label img { float: left; width: 20mm; height: 20mm; margin-right: 1mm; image-rendering: pixelated; }
.code { display: block; font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-weight: bold;
        font-size: 9pt; }
.long { font-size: 6.5pt; }
.wrap { white-space: normal; overflow-wrap: anywhere; }
.statement { white-space: normal; font-weight: bold; }
"""
# The code runs across the top of the cell; longer than this it does not fit at 9 pt (32 fit at 6.5 pt).
_LONG_CODE = 23
# About this many characters fit on a line beside the QR; a longer line is allowed to wrap.
_SIDE_LINE = 18
# Beyond this the statement no longer fits beside and below the QR and would be cut off; a
# regulatory statement is refused rather than printed in part.
SHEET_STATEMENT_MAX = 110


def _one_line(value: str) -> str:
    return _CONTROL_RE.sub(" ", value).strip()


def _side_line(text: str) -> str:
    text = _one_line(text)
    return f'<span class="wrap">{escape(text)}</span>' if len(text) > _SIDE_LINE else escape(text)


def _sheet_qr(payload: str) -> str:
    # Greyscale rather than 1-bit PNG: WeasyPrint embeds greyscale as it is, but converts
    # 1-bit images to RGB first, which costs time and triples the data.
    buffer = io.BytesIO()
    _qr_image(payload, _SHEET_QR_BOX).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _cell_html(label: LabelText) -> str:
    code_class = "code long" if len(label.code) > _LONG_CODE else "code"
    lines = [_side_line(label.kind)]
    if label.subject_code:
        lines.append(_side_line(f"Subject {label.subject_code}"))
    lines.append(label.date.isoformat())
    if label.statement:
        lines.append(f'<span class="statement">{escape(_one_line(label.statement))}</span>')
    text = "\n".join(lines)
    image = f'<img src="{_sheet_qr(label.payload)}" alt="">'
    return f'<div class="label"><span class="{code_class}">{escape(label.code)}</span>{image}{text}</div>'


def label_sheet_html(labels: Sequence[LabelText]) -> str:
    """The HTML behind :func:`label_sheet_pdf`, one ``.sheet`` per A4 page."""
    sheets = []
    for start in range(0, len(labels), LABELS_PER_SHEET):
        cells = "".join(_cell_html(label) for label in labels[start : start + LABELS_PER_SHEET])
        sheets.append(f'<div class="sheet">{cells}</div>')
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Stroma labels</title>'
        f"<style>{_SHEET_CSS}</style></head><body>{''.join(sheets)}</body></html>"
    )


def label_sheet_pdf(labels: Sequence[LabelText]) -> bytes:
    """An A4 PDF of labels, 4 x 8 per page, filled row by row, for office printers and label sheets."""
    if not labels:
        raise ValueError("a label sheet needs at least one label")
    for label in labels:
        _check_printable(label, statement_max=SHEET_STATEMENT_MAX)
    # Imported here: WeasyPrint loads Pango and fonts, which most requests never need.
    from weasyprint import HTML

    pdf = HTML(string=label_sheet_html(labels)).write_pdf()
    assert isinstance(pdf, bytes)
    return pdf


# --- ZPL for thermal printers ------------------------------------------------------------

# 2 x 1 inch at 203 dpi.
ZPL_WIDTH_DOTS = 406
ZPL_HEIGHT_DOTS = 203
_ZPL_TEXT_X = 185
_ZPL_TEXT_WIDTH = ZPL_WIDTH_DOTS - _ZPL_TEXT_X - 8
# Three lines of 18-dot text beside a 1-inch QR; a longer statement is refused, not cut off.
ZPL_STATEMENT_MAX = 48
# Font 0 glyphs are about 0.6 of the width parameter wide: the basis for narrowing the font
# so that a line fits instead of running off the label. Below 8 dots a glyph is no longer
# legible, and a line that would need that is refused rather than cut off.
_ZPL_GLYPH_RATIO = 0.6
_ZPL_MIN_FONT_WIDTH = 8


def _zpl_text(value: str) -> str:
    """Field data for ``^FH_``, in plain ASCII.

    ``^`` and ``~`` would start a command and ``_`` is the hex marker, so they are written as
    hex; so is anything outside printable ASCII, as its UTF-8 bytes (the label is ``^CI28``),
    which keeps the file safe to send as ASCII to any printer spooler.
    """
    out = []
    for char in _one_line(value):
        if " " <= char <= "~" and char not in "^~_":
            out.append(char)
        else:
            out.extend(f"_{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def _zpl_line(y: int, height: int, value: str) -> str:
    """One line of text, its font narrowed as far as needed for it to fit the space beside the QR."""
    text = _one_line(value)
    width = min(height, int(_ZPL_TEXT_WIDTH / (_ZPL_GLYPH_RATIO * max(len(text), 1))))
    if width < _ZPL_MIN_FONT_WIDTH:
        raise ValueError(f"{text!r} is too long for one line of a 2 x 1 inch label")
    return f"^FO{_ZPL_TEXT_X},{y}^A0N,{height},{width}^FB{_ZPL_TEXT_WIDTH},1,0,L,0^FH_^FD{_zpl_text(text)}^FS"


def label_zpl(label: LabelText) -> str:
    """ZPL II for a 2 x 1 inch thermal label: QR on the left, the same facts in text on the right.

    The output depends only on the label, so reprints are byte-identical and can be compared.
    """
    _check_printable(label, statement_max=ZPL_STATEMENT_MAX)
    lines = [
        "^XA",
        "^CI28",  # field data is UTF-8
        f"^PW{ZPL_WIDTH_DOTS}",
        f"^LL{ZPL_HEIGHT_DOTS}",
        "^LH0,0",
        # Model 2, magnification 5: at most version 3, 145 dots square. "MA," is error
        # correction M with automatic mode selection. The payload alphabet holds no ZPL control
        # character. ^BQ prints about 10 dots below its ^FO, which leaves the quiet zone.
        f"^FO20,10^BQN,2,5^FDMA,{label.payload}^FS",
        _zpl_line(20, 30, label.code),
        _zpl_line(60, 22, label.kind),
    ]
    if label.subject_code:
        lines.append(_zpl_line(86, 22, f"Subject {label.subject_code}"))
    lines.append(_zpl_line(112, 22, label.date.isoformat()))
    if label.statement:
        statement = _zpl_text(label.statement)
        lines.append(f"^FO{_ZPL_TEXT_X},140^A0N,18,18^FB{_ZPL_TEXT_WIDTH},3,0,L,0^FH_^FD{statement}^FS")
    lines.append("^XZ")
    return "\n".join(lines) + "\n"
