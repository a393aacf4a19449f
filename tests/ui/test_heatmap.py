"""The Why? view's pictures (ui/widgets/heatmap.py), pure numpy/PIL: the colours diverge around 0 and land where the
field box says, over the drawing."""

import io

import numpy as np
from PIL import Image

from records.explanations import FieldBox
from ui.widgets.heatmap import MAX_ALPHA, colorize, over_drawing, over_field, smooth


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=int)


def test_smoothing_spreads_a_pixel_and_keeps_its_total_away_from_the_edges():
    spike = np.zeros((28, 28))
    spike[10, 10] = 16.0
    smoothed = smooth(spike)
    assert smoothed.shape == (28, 28) and abs(smoothed.sum() - 16.0) < 1e-5
    assert smoothed[10, 10] == 4.0 and smoothed[9, 10] == 2.0 and smoothed[9, 9] == 1.0 and smoothed[12, 10] == 0


def test_colours_are_red_for_blue_against_and_symmetric_in_strength():
    values = np.zeros((28, 28))
    values[5, 5], values[5, 6], values[5, 7] = 2.0, -2.0, 0.5
    image, legend = colorize(values)
    rgba = np.asarray(image, dtype=int)
    assert rgba[5, 5, 0] > rgba[5, 5, 2] and rgba[5, 6, 2] > rgba[5, 6, 0]  # red +, blue -
    assert rgba[5, 5, 3] == rgba[5, 6, 3] == round(MAX_ALPHA * 255)  # the same magnitude, the same opacity
    assert 0 < rgba[5, 7, 3] < rgba[5, 5, 3] and rgba[0, 0, 3] == 0
    assert legend.scale == 2.0 and legend.positive == 2.5 and legend.negative == -2.0
    blank, flat = colorize(np.zeros((28, 28)))  # nothing to show: transparent, no division by zero
    assert np.asarray(blank)[..., 3].max() == 0 and flat.scale == 0


def test_the_map_lands_inside_the_field_box_over_the_drawing():
    drawing = Image.new("RGB", (280, 280), "white")
    values = np.zeros((28, 28))
    values[:, :14] = 1.0  # the field's left half speaks for the digit, the right half against it
    values[:, 14:] = -1.0
    colours, _ = colorize(values)
    box = FieldBox(left=40.0, top=20.0, right=180.0, bottom=160.0)  # 5 drawing pixels per field pixel
    picture = pixels(over_drawing(colours, png(drawing), box))
    assert picture.shape == (280, 280, 3)
    left, right = picture[90, 60], picture[90, 160]
    assert left[0] > left[2] and right[2] > right[0]
    assert (picture[200, 200] == 255).all() and (picture[10, 10] == 255).all()  # outside the box: the drawing


def test_a_box_past_the_drawings_edges_is_cropped_and_the_field_picture_is_square():
    drawing = Image.new("RGBA", (100, 80), (0, 0, 0, 0))  # transparent, as some clients send
    colours, _ = colorize(np.ones((28, 28)))
    picture = pixels(over_drawing(colours, png(drawing), FieldBox(left=-30.0, top=-10.0, right=130.0, bottom=150.0)))
    assert picture.shape == (80, 100, 3) and picture[40, 50, 0] > picture[40, 50, 2]
    preview = Image.new("L", (28, 28), 0)
    field = pixels(over_field(colours, png(preview)))
    assert field.shape == (224, 224, 3) and field[100, 100, 0] > field[100, 100, 2]
