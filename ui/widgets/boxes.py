"""A number's answer drawn over the drawing: each digit's box, with the digit read and how sure the model is.

An SVG whose coordinates are the drawing's own pixels (the model server's boxes are in them), with the drawing as its
background: it scales with the page like the slate does, a phone's narrow screen included, and its text stays sharp.
Built here from numbers and a base64 data URL only, so nothing a user typed reaches the markup.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape

from app.drawings import media_type
from records.numbers import DigitReading

SURE = "#1d4ed8"  # the page's primary (ui/theme.py): white text on it 6.7:1
UNSURE = "#b91c1c"  # red-700, for a digit under the page's "not sure" threshold or refused: 6.5:1
TAB_HEIGHT = 1.35  # a label's height, in font sizes
REFERENCE_SIDE = 280  # the labels' size is set for a slate 280 px high; a larger picture gets larger labels


def chip_text(digit: DigitReading) -> str:
    """What a digit's label says: "4 · 97%" (the closest digit for a part refused as not a digit, with a "?")."""
    shown = f"{digit.digit}?" if digit.not_a_digit else str(digit.digit)
    return f"{shown} · {digit.confidence:.0%}"


def description(digits: Sequence[DigitReading]) -> str:
    """The picture's name for screen readers: what each box holds, left to right."""
    if not digits:
        return "Your drawing; no digits were found in it"
    read = ", ".join(f"{d.digit} ({d.confidence:.0%} sure{', not a digit' if d.not_a_digit else ''})" for d in digits)
    return f"Your drawing, each digit read in a box: {read}"


def boxes_svg(drawing: bytes, *, size: tuple[int, int], digits: Sequence[DigitReading], threshold: float) -> str:
    """The SVG: `drawing` (PNG or JPEG bytes, `size` = (width, height) px) with a box and a label per digit; digits
    under `threshold` confidence, or refused, in red."""
    width, height = size
    scale = max(1.0, min(width, height) / REFERENCE_SIDE)
    font = 22 * scale  # CSS px on a desktop; a phone shows the drawing at ~0.4x, and the digits' buttons repeat them
    margin = font * TAB_HEIGHT  # a strip above the drawing: a label never covers the ink of a digit near the top
    source = f"data:{media_type(drawing)};base64,{base64.b64encode(drawing).decode()}"
    parts = [
        f'<svg viewBox="0 {-margin:.1f} {width} {height + margin:.1f}" role="img" '
        f'aria-label="{escape(description(digits))}" '
        'style="width:100%;height:auto;display:block;border:1px solid #6b7280;border-radius:8px;background:#fff">',
        f'<image href="{source}" x="0" y="0" width="{width}" height="{height}"/>',
    ]
    for digit in digits:
        colour = UNSURE if digit.not_a_digit or digit.confidence < threshold else SURE
        parts.append(_box(digit, colour=colour, scale=scale, font=font))
    parts.append("</svg>")
    return "".join(parts)


def _box(digit: DigitReading, *, colour: str, scale: float, font: float) -> str:
    """One digit's frame, and its label on a filled tab just above it."""
    left, top, right, bottom = digit.box
    text = chip_text(digit)
    tab_width, tab_height = (len(text) * 0.62 + 0.8) * font, font * TAB_HEIGHT
    tab_top = top - tab_height
    return (
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" height="{bottom - top:.1f}" fill="none" '
        f'stroke="{colour}" stroke-width="{2.5 * scale:.1f}" rx="{4 * scale:.1f}"/>'
        f'<rect x="{left:.1f}" y="{tab_top:.1f}" width="{tab_width:.1f}" height="{tab_height:.1f}" fill="{colour}" '
        f'rx="{3 * scale:.1f}"/>'
        f'<text x="{left + 0.4 * font:.1f}" y="{tab_top + font * 1.05:.1f}" fill="#fff" font-size="{font:.1f}" '
        f'font-family="sans-serif" font-weight="bold">{escape(text)}</text>'
    )
