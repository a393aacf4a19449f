"""training/photos.py: the synthetic photos of digits on paper (made from strokes drawn here, no data set needed)."""

import io

import numpy as np
from PIL import Image

from handler import preprocess
from training import pendigits, photos

SEVEN = pendigits.PenDigit(label=7, writer=5, strokes=(np.array([[0, 0], [50, 0], [20, 100]], dtype=np.float32),))
EIGHT = pendigits.PenDigit(
    label=8, writer=10, strokes=(np.array([[25, 0], [0, 20], [50, 70], [25, 100], [0, 70], [50, 20], [25, 0.0]]),)
)


def test_pictures_are_what_the_page_may_send():
    """JPEG or PNG within the handler's limits, 300-1200 px, light paper; the pictures without a digit labelled -1."""
    samples = photos.evaluation_set([SEVEN, EIGHT] * 4, None, mnist_count=0, empty_count=4, seed=1)
    assert [s.label for s in samples] == [7, 8] * 4 + [-1] * 4
    assert {s.scene.source for s in samples} == {"pendigits", "none"}
    for sample in samples:
        image = Image.open(io.BytesIO(sample.data))
        assert image.format in ("JPEG", "PNG") and 300 <= max(image.size) <= 1200
        assert np.percentile(np.asarray(image.convert("L")), 75) > 100  # light paper, however it is lit
        preprocess.decode(sample.data)  # never refused as too large


def test_the_set_is_the_same_for_the_same_seed_and_differs_for_another():
    first = photos.evaluation_set([SEVEN], None, mnist_count=0, empty_count=1, seed=3)
    again = photos.evaluation_set([SEVEN], None, mnist_count=0, empty_count=1, seed=3)
    other = photos.evaluation_set([SEVEN], None, mnist_count=0, empty_count=1, seed=4)
    assert [s.data for s in first] == [s.data for s in again]
    assert first[0].data != other[0].data


def test_the_ink_is_where_the_strokes_are():
    """Blue ink on plain paper under even light: the picture's darkest pixels are bluish, and there are as many as
    the strokes cover (a few percent of the picture)."""
    scene = photos.Scene(ink="blue", pen="felt", paper="plain", light="even", capture="scan")
    rgb = np.asarray(Image.open(io.BytesIO(photos.picture(np.random.default_rng(0), scene, SEVEN.strokes))))
    grey = rgb.mean(axis=2)
    dark = grey < np.percentile(grey, 50) * 0.6
    assert 0.002 < dark.mean() < 0.2
    red, blue = rgb[dark][:, 0].mean(), rgb[dark][:, 2].mean()
    assert blue > red + 20


def test_report_counts_refusals_as_wrong_and_splits_by_condition():
    samples = [
        photos.Sample(b"", 7, photos.Scene(ink="blue")),
        photos.Sample(b"", 8, photos.Scene(ink="black")),
        photos.Sample(b"", -1, photos.Scene(source="none")),
    ]
    outcomes = [photos.Outcome(7, "", None), photos.Outcome(None, "no digit", None), photos.Outcome(None, "x", None)]
    report = photos.report(samples, outcomes)
    assert report["accuracy"]["all"] == {"accuracy": 0.5, "count": 2, "refused": 1}
    assert report["accuracy"]["ink=blue"]["accuracy"] == 1.0 and report["accuracy"]["ink=black"]["accuracy"] == 0.0
    assert report["digit_pictures_refused"]["count"] == 1
    assert report["empty_pictures"] == {"count": 1, "refused": 1, "share_refused": 1.0}


def test_the_hard_part_leaves_the_first_part_as_it_was_and_shows_each_condition():
    """Adding hard pictures must not change the first set's (its figures stay comparable), and every hard
    condition and hard kind of empty picture appears, each split between the tuning half and the held-out one."""
    first = photos.evaluation_set([SEVEN, EIGHT], None, mnist_count=0, empty_count=2, seed=5)
    both = photos.evaluation_set([SEVEN, EIGHT], None, mnist_count=0, empty_count=2, hard_count=8,
                                 hard_empty_count=6, seed=5)  # fmt: skip
    assert [s.data for s in both[: len(first)]] == [s.data for s in first]
    hard = both[len(first) :]
    assert {s.scene.hard for s in hard if s.label >= 0} == set(photos.HARD)
    assert {s.scene.hard for s in hard if s.label < 0} == set(photos.HARD_EMPTY_KINDS)
    even = photos.halves(both)
    for condition in (*photos.HARD, *photos.HARD_EMPTY_KINDS):
        assert sorted(e for s, e in zip(both, even, strict=True) if s.scene.hard == condition) == [False, True]
