"""The non-digit drawings: slate PNGs the handler's preprocessing accepts, reproducible, held-out parts apart."""

import io

import numpy as np
import pytest
from PIL import Image

from handler.preprocess import prepare
from training import nondigits

pytest.importorskip("HersheyFonts", reason="training-time dependency: pip install -e '.[dev]'")


def family(drawing: nondigits.Drawing) -> str:
    """What a drawing was made from: the font, the shape or scribble family, the digits' source."""
    if drawing.kind == "letters":
        return drawing.description.split("(")[1].rstrip(")")
    if drawing.kind == "pairs":
        return drawing.part  # MNIST train digits vs MNIST test digits (checked below)
    return drawing.description.split(" ", 1)[1]


@pytest.mark.parametrize("part", nondigits.PARTS)
@pytest.mark.parametrize("kind", nondigits.KINDS)
def test_each_kind_gives_slate_pngs_that_preprocessing_accepts(kind, part, mnist):
    drawings = list(nondigits.generate(kind, count=12, seed=3, part=part, mnist=mnist))
    assert len(drawings) == 12
    for drawing in drawings:
        assert (drawing.kind, drawing.part) == (kind, part)
        image = Image.open(io.BytesIO(drawing.png))
        assert image.format == "PNG" and image.size == (280, 280)
        prepared = prepare(drawing.png)  # raises BlankImageError for a blank slate
        assert prepared.inverted  # dark strokes, as the page draws them
        assert np.count_nonzero(prepared.ink > 0.25) >= 10  # visible ink (a long thin scribble is faint)


@pytest.mark.parametrize("kind", nondigits.KINDS)
def test_deterministic_by_seed(kind, mnist):
    def pngs(seed):
        return [d.png for d in nondigits.generate(kind, count=5, seed=seed, part="train", mnist=mnist)]

    assert pngs(11) == pngs(11)
    assert pngs(11) != pngs(12)


@pytest.mark.parametrize("kind", nondigits.KINDS)
def test_train_and_heldout_parts_are_made_differently(kind, mnist):
    train = list(nondigits.generate(kind, count=60, seed=0, part="train", mnist=mnist))
    heldout = list(nondigits.generate(kind, count=60, seed=0, part="heldout", mnist=mnist))
    assert not {family(d) for d in train} & {family(d) for d in heldout}
    assert not {d.png for d in train} & {d.png for d in heldout}
    if kind == "letters":
        assert {family(d) for d in train} <= set(nondigits.TRAIN_FONTS)


def test_pairs_come_from_the_matching_mnist_split(mnist):
    """Training pairs use MNIST training digits only, held-out pairs test digits only: each works with the other
    split empty."""
    empty = mnist["train"].images[:0], mnist["train"].labels[:0]
    only_test = {"train": type("Split", (), dict(zip(("images", "labels"), empty, strict=True))), "test": mnist["test"]}
    assert len(list(nondigits.generate("pairs", count=3, seed=0, part="heldout", mnist=only_test))) == 3
    with pytest.raises(ValueError):
        list(nondigits.generate("pairs", count=3, seed=0, part="train", mnist=only_test))


def test_confusable_letters_are_never_drawn():
    drawn = set(nondigits.TRAIN_LETTERS + nondigits.HELDOUT_LETTERS)
    assert not drawn & set("OoQDIlijJTtLZzESsGbBgqaPyCceUuA")


def test_pairs_of_drawings_put_real_drawings_side_by_side():
    """Users' own digits, two or three to a slate: wider than tall once cropped, and read by the handler."""
    from training import canvas

    rng = np.random.default_rng(0)
    drawings = []
    for style in canvas.STYLES:  # every export style the page and the pendigits renderer produce
        mask = np.zeros((280, 280), dtype=np.uint8)
        top, left = rng.integers(20, 120, 2)
        mask[top : top + 120, left + 30 : left + 45] = 255  # a tall stroke, like a 1
        drawings.append(canvas.to_png(canvas.styled(mask, style)))
    made = list(nondigits.pairs_of_drawings(drawings, count=9, seed=1))
    assert len(made) == 9 and {d.kind for d in made} == {"pairs"}
    assert [d.png for d in made] == [d.png for d in nondigits.pairs_of_drawings(drawings, count=9, seed=1)]
    for drawing in made:
        ink = nondigits._ink_crop(drawing.png)
        assert ink.shape[1] > ink.shape[0] * 0.2  # three 1s (15 px wide each) side by side are no longer one stroke
        columns = np.flatnonzero(ink.max(0) > 128)
        assert np.diff(columns).max() > 1 or len(columns) > 30  # a gap between the strokes, or strokes touching
        prepare(drawing.png)
    assert {d.description for d in made} <= {"drawings x2", "drawings x3"}


def test_ink_crop_reads_every_export_style():
    from training import canvas

    mask = np.zeros((280, 280), dtype=np.uint8)
    mask[100:150, 60:90] = 255
    for style in canvas.STYLES:
        assert nondigits._ink_crop(canvas.to_png(canvas.styled(mask, style))).shape == (50, 30), style
