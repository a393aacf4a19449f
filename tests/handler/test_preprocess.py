"""The MNIST-style preparation of drawings, on real PNG/JPEG bytes."""

import io
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw

from handler import preprocess
from handler.preprocess import BlankImageError, ImageTooLargeError, PreprocessError, prepare
from tests.conftest import blank_png
from tools.bad_inputs import (
    chunk_flood_png,
    comment_flood_jpeg,
    metadata_bomb_png,
    noise_png,
    scan_flood_jpeg,
    short_header_png,
    text_bomb_png,
    with_coding,
)


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def seven_mask(*, size: int = 280, box=(40, 30, 120, 150), width: int = 18) -> Image.Image:
    """An 'L' mask (255 = ink) of a 7 drawn with a round pen inside box (left, top, right, bottom)."""
    mask = Image.new("L", (size, size), 0)
    left, top, right, bottom = box
    ImageDraw.Draw(mask).line(
        [(left, top), (right, top), (left + (right - left) // 3, bottom)], fill=255, width=width, joint="curve"
    )
    return mask


def styled(mask: Image.Image, style: str) -> Image.Image:
    ink = np.asarray(mask)
    if style == "black_on_white":
        return Image.fromarray(255 - ink).convert("RGB")
    if style == "white_on_black":
        return Image.fromarray(ink).convert("RGB")
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    if style == "transparent_white_strokes":
        rgba[..., :3] = 255
    elif style == "transparent_blue_strokes":
        rgba[..., 2] = 120
    rgba[..., 3] = ink  # the background is transparent *black*, as canvas.toDataURL() exports it
    return Image.fromarray(rgba, mode="RGBA")


def centre_of_mass(ink: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(ink.shape)
    return float((ys * ink).sum() / ink.sum()), float((xs * ink).sum() / ink.sum())


def ink_box(ink: np.ndarray, threshold: float = 0.05) -> tuple[int, int]:
    rows, cols = np.flatnonzero((ink > threshold).any(1)), np.flatnonzero((ink > threshold).any(0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def test_off_centre_drawing_is_centred_by_mass_and_scaled_to_20px():
    prepared = prepare(encode(styled(seven_mask(box=(170, 160, 260, 270)), "black_on_white")))
    assert prepared.ink.shape == (28, 28)
    com_y, com_x = centre_of_mass(prepared.ink)
    assert abs(com_y - 14) <= 0.75 and abs(com_x - 14) <= 0.75
    assert max(ink_box(prepared.ink)) in (20, 21)  # anti-aliased edges may add a faint pixel
    assert prepared.ink.max() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize(
    "style", ["white_on_black", "transparent", "transparent_white_strokes", "transparent_blue_strokes"]
)
def test_every_export_style_gives_the_same_digit_as_black_on_white(style):
    mask = seven_mask()
    reference = prepare(encode(styled(mask, "black_on_white")))
    other = prepare(encode(styled(mask, style)))
    assert np.abs(reference.ink - other.ink).max() < 0.05
    assert reference.inverted is True


def test_polarity_is_detected_from_the_background():
    mask = seven_mask()
    assert prepare(encode(styled(mask, "black_on_white"))).inverted is True
    assert prepare(encode(styled(mask, "white_on_black"))).inverted is False


def test_grey_paper_background_is_removed():
    ink = np.asarray(seven_mask()).astype(np.float32) / 255
    photo = (200 - 180 * ink).astype(np.uint8)  # dark strokes on grey (200) paper
    prepared = prepare(encode(Image.fromarray(photo), "JPEG", quality=90))
    assert prepared.ink[0].max() < 0.1 and prepared.ink[:, 0].max() < 0.1  # the border stays background
    assert prepared.inverted is True


def test_aspect_ratio_is_kept():
    mask = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(mask).rectangle((120, 40, 159, 239), fill=255)  # 40 wide, 200 tall
    height, width = ink_box(prepare(encode(mask)).ink, threshold=0.5)
    assert height == 20 and width == 4


def test_mnist_digit_survives_preparation(mnist):
    digit = mnist["test"].images[0]
    prepared = prepare(encode(Image.fromarray(digit)))
    original = digit.astype(np.float32) / 255
    assert np.corrcoef(prepared.ink.ravel(), original.ravel())[0, 1] > 0.9


@pytest.mark.parametrize(
    "png",
    [
        blank_png(),  # transparent canvas
        blank_png(mode="RGB", color=(255, 255, 255)),
        blank_png(mode="RGB", color=(0, 0, 0)),
        blank_png(mode="RGB", color=(90, 90, 90)),  # all ink: no contrast anywhere
        blank_png(1, mode="L", color=0),
    ],
    ids=["transparent", "white", "black", "all-ink", "1x1"],
)
def test_blank_canvas_is_refused(png):
    with pytest.raises(BlankImageError, match="blank"):
        prepare(png)


def test_a_speck_is_blank():
    image = Image.new("L", (280, 280), 255)
    image.putpixel((140, 140), 0)
    with pytest.raises(BlankImageError):
        prepare(encode(image))


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("1", (5000, 5000)))  # 25 Mpx in a few KB
    assert len(bomb) < 100_000
    with pytest.raises(ImageTooLargeError, match="too large"):
        preprocess.decode(bomb)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"this is not an image", "not an image"),
        (encode(styled(seven_mask(), "white_on_black"))[:400], "corrupt"),
        (encode(Image.new("RGB", (28, 28)), "GIF"), "unsupported image format GIF"),
        (encode(Image.new("RGB", (28, 28)), "BMP"), "unsupported image format BMP"),
        (short_header_png(), "corrupt image: Truncated IHDR"),  # Pillow raises ValueError for these two
        (with_coding(encode(styled(seven_mask(), "black_on_white"), "JPEG"), 0xC3), "unsupported JPEG coding"),
        (with_coding(encode(styled(seven_mask(), "black_on_white"), "JPEG"), 0xC9), "unsupported JPEG coding"),
    ],
    ids=["empty", "text", "truncated", "gif", "bmp", "short-header", "lossless-jpeg", "arithmetic-jpeg"],
)
def test_bad_bytes_get_a_clear_message(payload, message):
    with pytest.raises(PreprocessError, match=message):
        prepare(payload)


def test_animated_png_is_refused():
    frames = [styled(seven_mask(), "white_on_black"), Image.new("RGB", (280, 280))]
    payload = encode(frames[0], save_all=True, append_images=frames[1:])
    with pytest.raises(PreprocessError, match="animated"):
        prepare(payload)


def test_png_preview_round_trips():
    prepared = prepare(encode(styled(seven_mask(), "black_on_white")))
    preview = Image.open(io.BytesIO(prepared.png()))
    assert preview.size == (28, 28) and preview.mode == "L"
    assert np.abs(np.asarray(preview) / 255 - prepared.ink).max() <= 0.5 / 255 + 1e-6


def test_tensor_is_normalised_like_training():
    prepared = prepare(encode(styled(seven_mask(), "black_on_white")))
    tensor = prepared.tensor()
    assert tuple(tensor.shape) == (1, 28, 28)
    assert float(tensor.min()) == pytest.approx(-preprocess.MNIST_MEAN / preprocess.MNIST_STD, abs=1e-5)


# The cost of one request is bounded before the expensive steps (`make bench-inputs` measures it).


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (encode(Image.new("RGBA", (4096, 4096), (255, 255, 255, 255))), "4096x4096 PNG of 67,108,864 bytes of pixels"),
        (encode(styled(seven_mask(size=840, box=(120, 90, 360, 450), width=54), "black_on_white")), "840x840 PNG"),
        (noise_png(820, 820, bit_depth=16, color_type=0), "820x820 PNG of 1,344,800"),  # 16-bit samples count twice
        (encode(Image.new("1", (2100, 100))), "2100x100 pixels (PNGs: at most 2048 per side)"),
        (chunk_flood_png(encode(styled(seven_mask(), "black_on_white"))), "more than 1024 PNG chunks"),
        (comment_flood_jpeg(encode(styled(seven_mask(), "black_on_white"), "JPEG")), "more than 64 JPEG segments"),
        (encode(Image.effect_noise((1024, 1024), 60).convert("RGB"), "JPEG", quality=95), "baseline JPEG of"),
        (encode(Image.new("L", (2048, 2048), 200), "JPEG", progressive=True), "2048x2048 progressive JPEG"),
        (
            scan_flood_jpeg(
                encode(styled(seven_mask(), "black_on_white"), "JPEG", progressive=True, quality=5), extra=20
            ),
            "JPEG scans (at most 16)",
        ),
    ],
    ids=[
        "png-4096",
        "png-840",
        "png-16bit",
        "png-side",
        "png-chunks",
        "jpeg-segments",
        "jpeg-bytes",
        "progressive-pixels",
        "jpeg-scans",
    ],
)
def test_images_dearer_than_any_drawing_are_refused_with_the_limit(payload, message):
    with pytest.raises(ImageTooLargeError, match=re.escape(message)) as refused:
        prepare(payload)
    assert refused.value.status == 413


def test_a_png_at_the_limit_is_accepted():
    side = int((preprocess.MAX_PNG_SAMPLE_BYTES / 4) ** 0.5)
    drawing = seven_mask(size=side, box=(side // 7, side // 9, side * 3 // 7, side // 2), width=side // 16)
    assert prepare(encode(styled(drawing, "transparent"))).ink.max() > 0.9


def test_the_number_slate_fits_and_the_refusal_names_both_slates():
    """Number mode's slate sends 840x280 RGBA (940,800 bytes of samples); twice that side is refused, and the message
    names what the page sends, so a caller knows what size to send."""
    assert preprocess.decode(encode(Image.new("RGBA", (840, 280), (0, 0, 0, 255)))).size == (840, 280)
    with pytest.raises(ImageTooLargeError, match="the page sends 280x280, or 840x280 for a number"):
        preprocess.decode(encode(Image.new("RGBA", (1680, 560), (0, 0, 0, 255))))


def test_metadata_is_dropped_unread():
    """Text, ICC and unknown chunks never reach Pillow: a PNG carrying 120 MB of compressed metadata reads as its
    pixels alone (it was refused as corrupt before, after inflating 64 MB)."""
    png = encode(styled(seven_mask(), "black_on_white"))
    reference = prepare(png).ink
    for payload in (metadata_bomb_png(png), text_bomb_png(png)):
        assert np.array_equal(prepare(payload).ink, reference)


def test_a_large_jpeg_photo_is_decoded_reduced_and_reads_like_a_small_one():
    mask = seven_mask(size=3000, box=(900, 600, 1900, 2300), width=150)
    ink = np.asarray(mask).astype(np.float32) / 255
    photo = Image.fromarray((200 - 180 * ink).astype(np.uint8))
    large = prepare(encode(photo, "JPEG", quality=70))
    small = prepare(encode(photo.resize((300, 300), Image.Resampling.BOX), "JPEG", quality=90))
    assert np.abs(large.ink - small.ink).max() < 0.2 and large.inverted


@pytest.mark.parametrize("style", ["black_on_white", "transparent", "transparent_white_strokes"])
def test_reducing_a_large_drawing_to_the_working_side_barely_changes_the_digit(monkeypatch, style):
    big = styled(seven_mask(size=1100, box=(160, 120, 480, 600), width=72), style)  # reduced 3x (a decoded JPEG's size)
    reduced = preprocess.prepare_image(big).ink
    monkeypatch.setattr(preprocess, "WORK_SIDE", 4096)
    full = preprocess.prepare_image(big).ink
    assert np.abs(reduced - full).max() < 0.1


def test_16_bit_greyscale_is_read_not_clipped_to_white():
    """convert("L") clips I;16 to 255, so a 16-bit drawing read as blank before."""
    ink = np.asarray(seven_mask()).astype(np.uint32)
    image = Image.fromarray((65535 - ink * 257).astype(np.uint16))
    prepared = prepare(encode(image))
    reference = prepare(encode(styled(seven_mask(), "black_on_white")))
    assert np.abs(prepared.ink - reference.ink).max() < 0.05


def test_a_palette_image_with_transparency_reads_like_rgba():
    rgba = styled(seven_mask(), "transparent_blue_strokes")
    palette = rgba.quantize(colors=16, method=Image.Quantize.FASTOCTREE)
    assert palette.mode == "P"
    payload = encode(palette, transparency=palette.getpixel((0, 0)))
    assert np.abs(prepare(payload).ink - prepare(encode(rgba)).ink).max() < 0.1


@pytest.mark.parametrize(
    ("size", "box", "fmt"),
    [
        (280, (170, 160, 260, 270), "PNG"),
        (280, (10, 20, 200, 60), "PNG"),
        (280, (100, 5, 115, 275), "PNG"),
        (1100, (300, 200, 800, 1000), "PNG"),  # greyscale, reduced to a 367 px working copy first
        (2000, (500, 300, 1500, 1800), "JPEG"),  # decoded at 1/4 scale (DCT scaling)
    ],
    ids=["corner", "wide", "thin", "reduced-png", "scaled-jpeg"],
)
def test_field_box_maps_the_field_back_over_the_drawing(size, box, fmt):
    """The ink of the 28x28 field, mapped through field_box, lies where the strokes are on the drawing, in the
    drawing's own pixels also when the handler worked on a reduced copy."""
    mask = seven_mask(size=size, box=box, width=12 * size // 280)
    image = styled(mask, "transparent") if fmt == "PNG" and size == 280 else styled(mask, "black_on_white").convert("L")
    prepared = prepare(encode(image, fmt))
    left, top, right, bottom = prepared.field_box
    scale_x, scale_y = (right - left) / 28, (bottom - top) / 28
    rows = np.flatnonzero((prepared.ink > 0.05).any(1))
    cols = np.flatnonzero((prepared.ink > 0.05).any(0))
    mapped = (left + cols[0] * scale_x, top + rows[0] * scale_y, left + (cols[-1] + 1) * scale_x,
              top + (rows[-1] + 1) * scale_y)  # fmt: skip
    ink = np.asarray(mask) > 25
    drawn_rows, drawn_cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    drawn = (drawn_cols[0], drawn_rows[0], drawn_cols[-1] + 1, drawn_rows[-1] + 1)
    tolerance = 1.5 * max(scale_x, scale_y)  # one field pixel of anti-aliasing, either side
    assert all(abs(a - b) <= tolerance for a, b in zip(mapped, drawn, strict=True)), (mapped, drawn)
