"""The evaluation drawings: canvas-style and pen-style renderings of MNIST digits."""

import io

import numpy as np
from PIL import Image

from handler.preprocess import prepare
from training import canvas


def test_skeleton_of_a_thick_bar_is_one_pixel_wide():
    bar = np.zeros((40, 40), dtype=bool)
    bar[5:35, 15:25] = True  # 10 px wide, 30 px tall
    thin = canvas.skeleton(bar)
    widths = thin[10:30].sum(axis=1)
    assert thin.any() and widths.max() == 1
    assert not (thin & ~bar).any()  # thinning only removes pixels


def test_pen_drawings_are_uniform_strokes_on_a_280_slate_in_every_style(mnist):
    rng = np.random.default_rng(3)
    for style in canvas.STYLES:
        image = canvas.render_pen(mnist["test"].images[0], rng=rng, style=style)
        assert image.size == (280, 280)
        assert image.mode == ("RGBA" if style == "transparent" else "RGB")
    drawings = list(canvas.pen_set(mnist["test"].images, mnist["test"].labels, count=30, seed=1))
    assert len(drawings) == 90
    for png, _, _ in drawings:
        prepare(png)  # never blank, never clipped away
        grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
        assert grey[0].max() == grey[0].min() and grey[-1].max() == grey[-1].min()  # the digit stays inside the slate
