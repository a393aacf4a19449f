"""Letters typeset in the machine's TrueType fonts: filled glyphs, not pen strokes (training/nondigits.py draws Hershey
strokes), the "letters in system fonts" a refusal is judged on.

    part "train"    the DejaVu family (Sans, Serif, Mono, Condensed; every weight and slant)
    part "heldout"  the Liberation family (Sans, Serif, Mono, Narrow): fonts no head trained on

Every letter but the digit-like ones (training/unipen.py DIGIT_LIKE_LETTERS: O o I l Z z S s b B g q, never a
negative), black ink on a 280 px slate in the page's export styles, at a random height, place and small rotation.
Without fonts (a machine with none under /usr/share/fonts) both parts are empty.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training import nondigits, unipen

FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"))
FAMILIES = {"train": "DejaVu", "heldout": "Liberation"}
LETTERS = "".join(
    c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in unipen.DIGIT_LIKE_LETTERS
)
SIZE = nondigits.SIZE


def fonts(part: str | None = None) -> list[Path]:
    """The TrueType/OpenType fonts of `part`'s family (None: every font), sorted by path."""
    found = sorted(p for d in FONT_DIRS if d.exists() for p in d.rglob("*") if p.suffix.lower() in (".ttf", ".otf"))
    if part is None:
        return found
    return [p for p in found if p.name.startswith(FAMILIES[part]) and "Math" not in p.name]


def glyph_mask(font: Path, char: str, height: int, *, angle: float = 0.0, at: tuple[float, float] = (0.5, 0.5)):
    """(SIZE, SIZE) uint8 ink mask (255 = ink): `char` with its ink `height` px tall (narrower when it would not fit),
    rotated by `angle` degrees, its box placed at `at` (0..1 of the free room across and down)."""
    face = ImageFont.truetype(str(font), size=height)
    left, top, right, bottom = face.getbbox(char)
    scale = min(height / max(1, bottom - top), (SIZE - 20) / max(1, right - left))
    face = ImageFont.truetype(str(font), size=max(8, round(height * scale)))
    left, top, right, bottom = face.getbbox(char)
    glyph = Image.new("L", (int(right - left) + 4, int(bottom - top) + 4), 0)
    ImageDraw.Draw(glyph).text((2 - left, 2 - top), char, 255, face)
    glyph = glyph.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    glyph.thumbnail((SIZE - 4, SIZE - 4))  # a tall letter turned a little stays on the slate
    room = np.maximum(np.array([SIZE, SIZE]) - np.array(glyph.size), 0)
    mask = Image.new("L", (SIZE, SIZE), 0)
    mask.paste(glyph, (round(room[0] * at[0]), round(room[1] * at[1])))
    return np.asarray(mask)


def letters(*, count: int, seed: int, part: str) -> list[bytes]:
    """`count` slate PNGs of letters in `part`'s fonts (none without fonts): random letter, font, height 70-250 px,
    rotation up to 12 degrees, place and export style."""
    chosen = fonts(part)
    if not chosen:
        return []
    rng = np.random.default_rng([seed, nondigits.PARTS.index(part), 7])
    out = []
    for _ in range(count):
        font, char = chosen[rng.integers(len(chosen))], LETTERS[rng.integers(len(LETTERS))]
        mask = glyph_mask(
            font, char, int(rng.uniform(70, 250)), angle=rng.uniform(-12, 12), at=tuple(rng.uniform(0, 1, 2))
        )
        out.append(nondigits.to_png(mask, style=str(rng.choice(nondigits.STYLES))))
    return out
