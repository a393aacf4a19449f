"""Stroke augmentation keeps a digit a drawing of the same shape family; the missing styles are what they say."""

import numpy as np
import pytest

from handler.preprocess import prepare
from training import pendigits, strokes

ZERO = (np.stack([np.cos(t := np.linspace(0, 2 * np.pi, 40)) * 0.6, np.sin(t)], 1) * 100,)  # an upright ellipse
SEVEN = (np.array([[0.0, 0.0], [60.0, 0.0], [20.0, 100.0]]),)
ONE = (np.array([[50.0, 0.0], [50.0, 100.0]]),)


def test_augment_returns_a_normalised_variation_and_depends_only_on_the_seed():
    rng = np.random.default_rng(0)
    out = strokes.augment(ZERO, rng=rng)
    low, span = strokes.bounds(out)
    assert np.allclose(low, 0) and span[1] == pytest.approx(1.0)
    assert len(out) == len(ZERO)
    again = strokes.augment(ZERO, rng=np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(out, again, strict=True))
    other = strokes.augment(ZERO, rng=np.random.default_rng(1))
    assert not all(a.shape == b.shape and np.allclose(a, b) for a, b in zip(out, other, strict=True))


def test_augment_stays_within_its_ranges():
    """A loop stays a loop: its ends meet, its proportions stay within the aspect range times the shear's reach."""
    rng = np.random.default_rng(2)
    for _ in range(50):
        (loop,) = strokes.augment(ZERO, rng=rng)
        assert np.linalg.norm(loop[0] - loop[-1]) < 0.15
        _, span = strokes.bounds((loop,))
        assert 0.3 < span[0] / span[1] < 1.4  # 0.6 wide, aspect 0.7-1.35, slant and rotation


def test_resampling_keeps_the_path_and_its_ends():
    line = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    dense = strokes.resample(line, spacing=0.1)
    assert np.array_equal(dense[0], line[0]) and np.array_equal(dense[-1], line[-1])
    assert len(dense) == 21
    assert np.allclose(np.linalg.norm(np.diff(dense[:-1], axis=0), axis=1), 0.1)
    assert len(strokes.resample(np.array([[0.0, 0.0]]), spacing=0.1)) == 1  # a tap stays a tap


def test_a_slashed_zero_has_a_slash_through_the_middle_reaching_the_loop():
    rng = np.random.default_rng(3)
    for _ in range(20):
        out = strokes.slashed_zero(ZERO, rng=rng)
        assert len(out) == 2
        slash = out[1] if len(out[1]) == 12 else out[0]
        _, span = strokes.bounds(out[:1] if len(out[1]) == 12 else out[1:])
        middle = slash[len(slash) // 2]
        centre = strokes.bounds(out)[0] + strokes.bounds(out)[1] / 2
        assert np.linalg.norm(middle - centre) < 0.15
        assert slash[0, 1] > slash[-1, 1]  # from below to above (y down)
        assert np.ptp(slash[:, 1]) >= 0.85 * span[1]


def test_a_crossed_seven_gets_a_short_bar_across_its_stem():
    out = strokes.crossed_seven(SEVEN, rng=np.random.default_rng(0))
    bar = out[-1]
    assert len(out) == 2 and np.ptp(bar[:, 1]) < 0.15  # about horizontal
    assert 0.4 < bar[:, 1].mean() < 0.7  # about halfway down
    stem_x = np.interp(bar[:, 1].mean(), out[0][1:, 1], out[0][1:, 0])
    assert bar[:, 0].min() < stem_x < bar[:, 0].max()


def test_a_flagged_one_has_its_flag_at_the_top_going_down_left():
    assert strokes.is_plain_one(ONE) and not strokes.is_plain_one(SEVEN)
    rng = np.random.default_rng(4)
    for _ in range(20):
        out = strokes.flagged_one(ONE, rng=rng)
        first = out[0]
        assert first[0, 0] < first[-1, 0] - 0.05 or first[0, 0] < 0.5  # the flag starts left of the bar
        assert first[0, 1] > strokes.bounds(out)[0][1]  # ... and below its top


@pytest.mark.parametrize("name", list(strokes.TEMPLATES))
def test_templates_are_drawable_digits(name):
    rng = np.random.default_rng(5)
    digit = strokes.template(name, rng=rng)
    png, *_ = pendigits.renderings([strokes.StyledDigit(strokes.TEMPLATES[name][0], name, digit)], seed=1)[0]
    assert (prepare(png).ink > 0.5).sum() > 20


def test_styled_digits_cover_every_style_and_are_reproducible():
    real = [strokes.StyledDigit(0, "w", ZERO), strokes.StyledDigit(7, "w", SEVEN), strokes.StyledDigit(1, "w", ONE)]
    made = strokes.styled_digits(real, count=70, seed=0)
    assert {d.writer for d in made} == {"style slashed 0", "style crossed 7", "style flagged 1"} | {
        f"style {name}" for name in strokes.TEMPLATES
    }
    assert {d.label for d in made} == {0, 1, 4, 7, 9}
    again = strokes.styled_digits(real, count=70, seed=0)
    assert all(
        np.array_equal(a, b)
        for x, y in zip(made, again, strict=True)
        for a, b in zip(x.strokes, y.strokes, strict=True)
    )


def test_a_flat_or_a_single_point_digit_stays_finite():
    """Real data holds a dash labelled 1 and one-point taps: nothing may blow up to a huge drawing."""
    rng = np.random.default_rng(0)
    for digit in [(np.array([[0.0, 5.0], [80.0, 5.0]]),), (np.array([[3.0, 4.0]]),)]:
        out = strokes.augment(digit, rng=rng)
        assert all(np.isfinite(s).all() for s in out)
        assert strokes.bounds(out)[1].max() <= 4.5
