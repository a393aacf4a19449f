"""4.0's base training data: pen digits drawn as slate drawings, prepared as the handler prepares them, cached."""

import numpy as np

from training import base_training, strokes
from training.refusal_head import DOODLE_SLATE, doodles

ONE = strokes.StyledDigit(1, "writer-a", (np.array([[50.0, 0.0], [50.0, 100.0]]),))
SEVEN = strokes.StyledDigit(7, "data/1a/x/b.dat", (np.array([[0.0, 0.0], [60.0, 0.0], [20.0, 100.0]]),))


def test_renderings_come_back_prepared_with_their_labels_writers_and_styles():
    drawn = base_training.prepared_renderings([ONE, SEVEN], count=2, seed=0, all_styles=True)
    assert len(drawn) == 2 * 2 * 3 and drawn.images.shape == (12, 28, 28) and drawn.images.dtype == np.uint8
    assert drawn.labels.tolist() == [1] * 6 + [7] * 6
    assert set(drawn.groups.tolist()) == {"writer-a", "data/1a/x/b.dat"}
    assert set(drawn.styles.tolist()) == {"black_on_white", "white_on_black", "transparent"}
    assert drawn.images.max() == 255  # preprocessing scales the darkest ink to 1


def test_the_cache_gives_back_the_same_arrays_without_drawing_again(tmp_path):
    calls = []

    def draw(digits, **kwargs):
        calls.append(kwargs)
        return base_training.prepared_renderings(digits, **kwargs)

    first = base_training.cached(tmp_path, draw, [ONE, SEVEN], count=1, seed=3, all_styles=False)
    again = base_training.cached(tmp_path, draw, [ONE, SEVEN], count=1, seed=3, all_styles=False, processes=2)
    assert len(calls) == 1  # the process count is not part of the key
    assert all(np.array_equal(getattr(first, f), getattr(again, f)) for f in ("images", "labels", "groups", "styles"))
    base_training.cached(tmp_path, draw, [ONE, SEVEN], count=1, seed=4, all_styles=False)
    assert len(calls) == 2  # another seed, other drawings


def test_concat_keeps_rows_together():
    a = base_training.prepared_renderings([ONE], count=1, seed=0, all_styles=False)
    b = base_training.prepared_renderings([SEVEN], count=2, seed=0, all_styles=False)
    both = base_training.concat(a, b)
    assert len(both) == 3 and both.labels.tolist() == [1, 7, 7] and np.array_equal(both.images[0], a.images[0])


def test_doodles_are_never_one_plain_stroke():
    made = doodles(count=40, seed=0)
    assert all(len(d.strokes) >= 2 for d in made)  # a lone loop or line would be a 0 or a 1
    assert {d.writer for d in made} == {f"doodle {k}" for k in ("polygon", "polygon pair", "loop with marks",
                                                                "loop in loop")}  # fmt: skip
    drawn = base_training.prepared_renderings(made[:4], count=1, seed=0, all_styles=False, spec=DOODLE_SLATE)
    assert len(drawn) == 4
