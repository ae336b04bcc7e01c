"""Tests for explorer.core.images: every odd or hostile upload is generated here, nothing is downloaded."""

from __future__ import annotations

import io
import os
import pickle
import re
import struct
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.core.errors import UserFacingError
from explorer.core.images import (
    MAX_FILE_BYTES,
    MAX_PIXELS,
    ImageInputError,
    LoadedImage,
    load_image,
)

CJK = re.compile(r"[\u4e00-\u9fff]")


# ----------------------------------------------------------------------------- helpers


def encode(im: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid-looking 1-bit PNG whose header claims width×height; the pixel data is a stub."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


def noise_rgb(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def pixels(loaded: LoadedImage) -> np.ndarray:
    return np.asarray(loaded.image)


def assert_user_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> None:
    err = excinfo.value
    assert type(err) is ImageInputError
    text = str(err).lower()
    for fragment in fragments:
        assert fragment.lower() in text, f"{fragment!r} not in {str(err)!r}"
    assert CJK.search(err.message("zh")), err.message("zh")


def note_text(loaded: LoadedImage) -> str:
    return " | ".join(loaded.note_texts("en")).lower()


# ------------------------------------------------------------------- ImageInputError


def test_error_carries_both_languages() -> None:
    err = ImageInputError("The file is empty.", "文件为空。")
    assert isinstance(err, ValueError) and isinstance(err, UserFacingError)
    assert str(err) == "The file is empty."
    assert err.message() == err.message("en") == "The file is empty."
    assert err.message("zh") == "文件为空。"
    assert err.message("zh-CN") == "文件为空。"
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.message_en, copy.message_zh) == (err.message_en, err.message_zh)


def test_every_refusal_has_chinese_text(tmp_path: Path) -> None:
    for bad in (b"", b"plain text", tmp_path, tmp_path / "missing.png", png_claiming_size(20000, 20000)):
        with pytest.raises(ImageInputError) as excinfo:
            load_image(bad)
        zh = excinfo.value.message("zh")
        assert zh and CJK.search(zh), zh
        assert zh != excinfo.value.message("en")


# --------------------------------------------------------------- paths and raw bytes


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError) as excinfo:
        load_image(tmp_path / "nope.jpg")
    assert_user_error(excinfo, "not found", "nope.jpg")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError) as excinfo:
        load_image(str(tmp_path))
    assert_user_error(excinfo, "folder")


def test_empty_file_and_empty_bytes(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError) as excinfo:
        load_image(write(tmp_path, "empty.png", b""))
    assert_user_error(excinfo, "empty", "0 bytes")
    with pytest.raises(ImageInputError) as excinfo:
        load_image(b"")
    assert_user_error(excinfo, "empty")


def test_file_over_the_byte_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    with open(path, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk and no read
    start = time.perf_counter()
    with pytest.raises(ImageInputError) as excinfo:
        load_image(path)
    assert time.perf_counter() - start < 0.5
    assert_user_error(excinfo, "50.0 mb", "limit is 50 mb")


def test_bytes_over_the_limit() -> None:
    with pytest.raises(ImageInputError) as excinfo:
        load_image(b"\x00" * (MAX_FILE_BYTES + 1))
    assert_user_error(excinfo, "limit is 50 mb")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageInputError) as excinfo:
        load_image(fifo)  # opening a FIFO for reading would block forever
    assert_user_error(excinfo, "not a regular file")


@pytest.mark.parametrize(
    ("name", "data", "extra"),
    [
        ("notes.txt", b"These are my lecture notes on ViT.\n" * 20, None),
        ("paper.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "pdf"),
        ("noise.bin", np.random.default_rng(1).bytes(4096), None),
        ("photo.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64, "heic"),
    ],
)
def test_non_images(tmp_path: Path, name: str, data: bytes, extra: str | None) -> None:
    with pytest.raises(ImageInputError) as excinfo:
        load_image(write(tmp_path, name, data))
    assert_user_error(excinfo, "not an image pil can read", "png, jpeg, webp, gif, bmp, tiff")
    if extra:
        assert extra in str(excinfo.value).lower()


def test_formats_outside_the_list_are_not_opened() -> None:
    # PPM is a fine image, but only the listed formats reach Pillow's decoders.
    with pytest.raises(ImageInputError) as excinfo:
        load_image(encode(Image.fromarray(noise_rgb()), "PPM"))
    assert_user_error(excinfo, "not an image pil can read")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
def test_truncated_files(tmp_path: Path, fmt: str) -> None:
    whole = encode(Image.fromarray(noise_rgb()), fmt)
    assert load_image(whole).image.size == (64, 48)  # the intact file is fine
    path = write(tmp_path, f"cut.{fmt.lower()}", whole[: len(whole) // 2])
    with pytest.raises(ImageInputError) as excinfo:
        load_image(path)
    assert_user_error(excinfo, "truncated or corrupt")


@pytest.mark.parametrize("keep", [12, 40])
def test_png_cut_inside_its_header_is_called_corrupt_not_foreign(keep: int) -> None:
    whole = encode(Image.fromarray(noise_rgb()), "PNG")
    with pytest.raises(ImageInputError) as excinfo:
        load_image(whole[:keep])
    assert_user_error(excinfo, "png file is truncated or corrupt")


def test_truncated_loading_stays_off_globally() -> None:
    from PIL import ImageFile

    with pytest.raises(ImageInputError):
        load_image(encode(Image.fromarray(noise_rgb()), "JPEG")[:800])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_unsupported_python_type() -> None:
    with pytest.raises(ImageInputError) as excinfo:
        load_image([[0, 0], [0, 0]])  # type: ignore[arg-type]
    assert_user_error(excinfo, "list", "file path")


# ------------------------------------------------------------------ decompression bombs


def test_20000_square_png_is_refused_from_its_header(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.png", png_claiming_size(20000, 20000))
    assert path.stat().st_size < 200
    start = time.perf_counter()
    with pytest.raises(ImageInputError) as excinfo:
        load_image(path)
    assert time.perf_counter() - start < 0.5
    assert_user_error(excinfo, "20000×20000 = 400.0 MP", "limit is 64 MP")


def test_our_limit_applies_below_pillows(tmp_path: Path) -> None:
    # 100×100 is nothing to Pillow; only our own header check can refuse it.
    path = write(tmp_path, "small.png", encode(Image.new("L", (100, 100)), "PNG"))
    with pytest.raises(ImageInputError) as excinfo:
        load_image(path, max_pixels=5_000)
    assert_user_error(excinfo, "100×100 = 0.0 MP", "limit is 0.005 MP")
    assert load_image(path, max_pixels=10_000).image.size == (100, 100)


def test_pillow_bomb_warning_becomes_a_user_error_and_leaks_nothing() -> None:
    # 100 MP is above Pillow's warning threshold (~89 MP) but under the caller's limit,
    # so the refusal can only come from Pillow's DecompressionBombWarning.
    assert 100_000_000 > Image.MAX_IMAGE_PIXELS
    filters_before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ImageInputError) as excinfo:
            load_image(png_claiming_size(10000, 10000), max_pixels=200_000_000)
    assert not [w for w in seen if issubclass(w.category, Image.DecompressionBombWarning)]
    assert_user_error(excinfo, "10000×10000 = 100.0 MP")
    assert warnings.filters == filters_before
    assert Image.MAX_IMAGE_PIXELS == int(1024 * 1024 * 1024 // 4 // 3)  # untouched


def test_bomb_from_an_array_or_pil_image_is_refused_too() -> None:
    with pytest.raises(ImageInputError) as excinfo:
        load_image(np.zeros((300, 400), np.uint8), max_pixels=100_000)
    assert_user_error(excinfo, "400×300")
    with pytest.raises(ImageInputError) as excinfo:
        load_image(Image.new("RGB", (400, 300)), max_pixels=100_000)
    assert_user_error(excinfo, "400×300")
    assert MAX_PIXELS == 64_000_000


# -------------------------------------------------------------------------- tiny images


def test_one_pixel_image(tmp_path: Path) -> None:
    loaded = load_image(write(tmp_path, "dot.png", encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG")))
    assert loaded.image.mode == "RGB" and loaded.image.size == (1, 1)
    assert loaded.image.getpixel((0, 0)) == (10, 20, 30)
    assert "tiny image (1×1 px)" in note_text(loaded) and "upsampled" in note_text(loaded)
    assert loaded.source_format == "PNG"


def test_ordinary_image_has_no_notes() -> None:
    data = noise_rgb(32, 40)
    loaded = load_image(encode(Image.fromarray(data), "PNG"))
    assert loaded.notes == ()
    assert (loaded.source_size, loaded.source_mode, loaded.source_format) == ((40, 32), "RGB", "PNG")
    np.testing.assert_array_equal(pixels(loaded), data)


def test_thin_image_is_tiny_but_accepted() -> None:
    loaded = load_image(np.zeros((8, 300, 3), np.uint8))
    assert loaded.image.size == (300, 8)
    assert "tiny image (300×8 px)" in note_text(loaded)


# ---------------------------------------------------------------------------- EXIF


def test_exif_orientation_6_is_applied(tmp_path: Path) -> None:
    # Stored 40 wide × 20 high, red block in the stored top-left corner. Orientation 6 means
    # "rotate 90° clockwise to display": the block must end up top-right of a 20×40 image.
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:6, :6] = (255, 0, 0)
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 6
    path = write(tmp_path, "phone.jpg", encode(im, "JPEG", exif=exif.tobytes(), quality=95))

    loaded = load_image(path)
    out = pixels(loaded)
    assert loaded.source_size == (40, 20)
    assert loaded.image.size == (20, 40)
    assert out[1, -2, 0] > 200 and out[1, -2, 1:].max() < 60  # top-right is red
    assert out[1, 1].max() < 60 and out[-2, -2].max() < 60  # the other corners stay black
    assert "exif orientation" in note_text(loaded) and "(6)" in note_text(loaded)


def test_exif_orientation_8_is_applied() -> None:
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:6, :6] = (0, 0, 255)
    im = Image.fromarray(stored)
    exif = im.getexif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise: top-left goes to bottom-left
    out = pixels(load_image(encode(im, "JPEG", exif=exif.tobytes(), quality=95)))
    assert out.shape[:2] == (40, 20)
    assert out[-2, 1, 2] > 200 and out[-2, 1, :2].max() < 60


# ---------------------------------------------------------------------------- modes


def test_16_bit_grayscale_png_spans_full_range(tmp_path: Path) -> None:
    ramp = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    src = Image.fromarray(ramp)
    path = write(tmp_path, "depth.png", encode(src, "PNG"))

    loaded = load_image(path)
    out = pixels(loaded)
    assert loaded.source_mode.startswith("I")
    assert loaded.image.mode == "RGB"
    assert out.min() == 0 and out.max() == 255
    assert np.all(out[..., 0] == out[..., 1]) and np.all(out[..., 1] == out[..., 2])
    flat = out[..., 0].ravel().astype(int)
    assert np.all(np.diff(flat) >= 0)  # order preserved, nothing clipped to white
    assert abs(int(out[128, 0, 0]) - 128) <= 1  # the middle value lands mid-gray
    assert (out[..., 0] == 255).mean() < 0.01
    assert "16-bit" in note_text(loaded)


def test_16_bit_big_endian_tiff() -> None:
    loaded = load_image(encode(Image.new("I;16B", (20, 20), 32896), "TIFF"))
    assert loaded.source_mode == "I;16B"
    assert loaded.image.getpixel((3, 3)) == (128, 128, 128)


def test_32_bit_integer_and_float_images_use_their_range() -> None:
    ints = Image.fromarray(np.linspace(-1000, 3000, 400).reshape(20, 20).astype(np.int32))
    out = pixels(load_image(ints))
    assert out.min() == 0 and out.max() == 255
    floats = Image.fromarray(np.full((20, 20), 0.5, np.float32))
    loaded = load_image(encode(floats, "TIFF"))
    assert loaded.source_mode == "F"
    assert loaded.image.getpixel((0, 0)) == (128, 128, 128)


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = write(tmp_path, "print.jpg", encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95))
    loaded = load_image(path)
    assert loaded.source_mode == "CMYK"
    r, g, b = loaded.image.getpixel((16, 16))
    assert r > 240 and g < 15 and b < 15  # no cyan, full magenta+yellow = red
    assert "cmyk" in note_text(loaded)


def test_palette_with_transparency_goes_on_white() -> None:
    im = Image.new("P", (20, 20), 0)
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putpixel((5, 5), 1)
    loaded = load_image(encode(im, "PNG", transparency=1))
    assert loaded.source_mode == "P"
    assert loaded.image.getpixel((5, 5)) == (255, 255, 255)
    assert loaded.image.getpixel((0, 0)) == (255, 0, 0)
    assert "white background" in note_text(loaded)


def test_palette_without_transparency_has_no_alpha_note() -> None:
    im = Image.fromarray(noise_rgb()).convert("P")
    loaded = load_image(encode(im, "PNG"))
    assert loaded.image.mode == "RGB"
    assert "white" not in note_text(loaded)
    np.testing.assert_array_equal(pixels(loaded), np.asarray(im.convert("RGB")))


def test_rgba_transparent_pixel_becomes_white() -> None:
    im = Image.new("RGBA", (20, 20), (0, 128, 0, 255))
    im.putpixel((0, 0), (255, 0, 0, 0))  # fully transparent red
    im.putpixel((1, 0), (0, 0, 0, 128))  # half transparent black
    loaded = load_image(encode(im, "PNG"))
    assert loaded.source_mode == "RGBA"
    assert loaded.image.getpixel((0, 0)) == (255, 255, 255)
    assert all(abs(c - 127) <= 1 for c in loaded.image.getpixel((1, 0)))
    assert loaded.image.getpixel((5, 5)) == (0, 128, 0)
    assert "white background" in note_text(loaded)


def test_opaque_rgba_is_not_noted() -> None:
    loaded = load_image(encode(Image.new("RGBA", (20, 20), (1, 2, 3, 255)), "PNG"))
    assert loaded.image.getpixel((4, 4)) == (1, 2, 3)
    assert loaded.notes == ()


def test_la_image() -> None:
    im = Image.new("LA", (20, 20), (60, 255))
    im.putpixel((2, 2), (60, 0))
    loaded = load_image(encode(im, "PNG"))
    assert loaded.source_mode == "LA"
    assert loaded.image.getpixel((2, 2)) == (255, 255, 255)
    assert loaded.image.getpixel((9, 9)) == (60, 60, 60)
    assert "white background" in note_text(loaded) and "grayscale" in note_text(loaded)


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("1", 1, (255, 255, 255)),
        ("L", 77, (77, 77, 77)),
        ("RGBX", (1, 2, 3, 0), (1, 2, 3)),
        ("YCbCr", (128, 128, 128), (128, 128, 128)),
        ("HSV", (0, 255, 255), (255, 0, 0)),
        ("LAB", (255, 128, 128), (255, 255, 255)),  # L=100, a=b=0: white
        ("PA", (0, 0), (255, 255, 255)),  # fully transparent
        ("La", (10, 0), (255, 255, 255)),
        ("RGBa", (0, 0, 0, 0), (255, 255, 255)),
    ],
)
def test_other_modes(mode: str, value, expected: tuple[int, int, int]) -> None:
    loaded = load_image(Image.new(mode, (20, 20), value))
    assert loaded.image.mode == "RGB" and loaded.source_mode == mode
    got = loaded.image.getpixel((10, 10))
    assert all(abs(a - b) <= 2 for a, b in zip(got, expected)), got


# ------------------------------------------------------------------------ animation


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_animated_image_uses_first_frame(tmp_path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (24, 24), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    extra = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **extra)
    loaded = load_image(write(tmp_path, f"anim.{fmt.lower()}", data))
    assert loaded.image.getpixel((12, 12)) == (255, 0, 0)
    assert "animated image with 3 frames: the first frame is used" in note_text(loaded)


def test_multipage_tiff_uses_first_page() -> None:
    pages = [Image.new("RGB", (24, 24), c) for c in [(0, 0, 255), (0, 255, 0)]]
    loaded = load_image(encode(pages[0], "TIFF", save_all=True, append_images=pages[1:]))
    assert loaded.image.getpixel((0, 0)) == (0, 0, 255)
    assert "2 images" in note_text(loaded)


# -------------------------------------------------------------------------- arrays


def test_float_array_in_0_1() -> None:
    arr = np.linspace(0.0, 1.0, 30 * 40 * 3).reshape(30, 40, 3)
    loaded = load_image(arr)
    out = pixels(loaded)
    assert loaded.image.size == (40, 30) and loaded.source_format is None
    np.testing.assert_array_equal(out, np.rint(arr * 255).astype(np.uint8))
    assert "0–1" in note_text(loaded)


def test_float_array_in_0_255_is_not_stretched() -> None:
    arr = np.full((20, 20, 3), 100.0)
    arr[0, 0] = 200.0
    out = pixels(load_image(arr))
    assert tuple(out[5, 5]) == (100, 100, 100) and tuple(out[0, 0]) == (200, 200, 200)


def test_gray_and_uint16_arrays() -> None:
    gray = load_image(np.full((20, 30), 42, np.uint8))
    assert gray.image.size == (30, 20) and gray.image.getpixel((0, 0)) == (42, 42, 42)
    assert gray.source_mode == "L"
    deep = load_image(np.array([[0, 65535], [32896, 257]], np.uint16))
    assert deep.source_mode == "I;16"
    assert pixels(deep)[:, :, 0].tolist() == [[0, 255], [128, 1]]


def test_rgba_and_channels_first_arrays() -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[0, 0] = (9, 9, 9, 0)
    assert load_image(rgba).image.getpixel((0, 0)) == (255, 255, 255)
    chw = np.zeros((3, 20, 30), np.uint8)
    chw[0] = 255  # red plane
    loaded = load_image(chw)
    assert loaded.image.size == (30, 20) and loaded.image.getpixel((7, 7)) == (255, 0, 0)
    assert "channels-first" in note_text(loaded)


def test_float_array_with_nan() -> None:
    arr = np.full((20, 20), 0.25)
    arr[0, 0] = np.nan
    loaded = load_image(arr)
    assert loaded.image.getpixel((0, 0)) == (0, 0, 0)
    assert loaded.image.getpixel((5, 5)) == (64, 64, 64)
    assert "nan" in note_text(loaded)


@pytest.mark.parametrize(
    "arr",
    [np.zeros(10, np.uint8), np.zeros((20, 20, 5), np.uint8), np.zeros((2, 4, 4, 3), np.uint8)],
    ids=["1d", "5-channels", "4d"],
)
def test_bad_array_shapes(arr: np.ndarray) -> None:
    with pytest.raises(ImageInputError) as excinfo:
        load_image(arr)
    assert_user_error(excinfo, "shape")


def test_bad_array_dtype_and_empty_array() -> None:
    with pytest.raises(ImageInputError) as excinfo:
        load_image(np.zeros((20, 20), np.complex64))
    assert_user_error(excinfo, "complex64")
    with pytest.raises(ImageInputError) as excinfo:
        load_image(np.zeros((0, 20, 3), np.uint8))
    assert_user_error(excinfo, "no pixels")


# ------------------------------------------------------------------------ PIL input


def test_pil_input_is_read_not_changed() -> None:
    src = Image.new("RGBA", (20, 20), (10, 20, 30, 0))
    loaded = load_image(src)
    assert loaded.source_format is None and loaded.source_mode == "RGBA"
    assert src.mode == "RGBA" and src.getpixel((0, 0)) == (10, 20, 30, 0)
    rgb_src = Image.new("RGB", (20, 20), (1, 2, 3))
    rgb_loaded = load_image(rgb_src)
    rgb_loaded.image.putpixel((0, 0), (9, 9, 9))
    assert rgb_src.getpixel((0, 0)) == (1, 2, 3)  # the result is a copy


def test_pil_image_opened_from_a_truncated_file() -> None:
    lazy = Image.open(io.BytesIO(encode(Image.fromarray(noise_rgb()), "JPEG")[:900]))
    with pytest.raises(ImageInputError) as excinfo:
        load_image(lazy)
    assert_user_error(excinfo, "truncated or corrupt")


# -------------------------------------------------------------------------- digests


def test_digest_depends_on_pixels_only(tmp_path: Path) -> None:
    data = noise_rgb(16, 24, seed=3)
    from_png = load_image(write(tmp_path, "a.png", encode(Image.fromarray(data), "PNG")))
    from_bmp = load_image(encode(Image.fromarray(data), "BMP"))
    from_array = load_image(data)
    from_pil = load_image(Image.fromarray(data))
    assert len(from_png.digest) == 64 and int(from_png.digest, 16) >= 0
    assert from_png.digest == from_bmp.digest == from_array.digest == from_pil.digest

    changed = data.copy()
    changed[0, 0, 0] ^= 1
    assert load_image(changed).digest != from_png.digest
    # Same bytes, different shape: the size is part of the digest.
    flat = np.zeros((2, 6, 3), np.uint8)
    assert load_image(flat).digest != load_image(flat.reshape(6, 2, 3)).digest


# ----------------------------------------------------------------------- concurrency


def test_concurrent_loads(tmp_path: Path) -> None:
    cases: list[tuple[object, tuple[int, int], tuple[int, int, int] | None]] = []
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    for i, colour in enumerate(colours):
        size = (30 + 10 * i, 20 + 5 * i)
        path = write(tmp_path, f"c{i}.png", encode(Image.new("RGB", size, colour), "PNG"))
        cases.append((path, size, colour))
        cases.append((encode(Image.new("RGB", size, colour), "BMP"), size, colour))
    # Refusals in the mix exercise the warnings guard from several threads at once.
    cases += [(png_claiming_size(10000, 10000), (0, 0), None)] * 4
    cases += [(png_claiming_size(20000, 20000), (0, 0), None)] * 4
    filters_before = list(warnings.filters)

    def run(case):
        source, size, colour = case
        try:
            loaded = load_image(source, max_pixels=200_000_000 if colour is None else MAX_PIXELS)
        except ImageInputError as err:
            return ("error", str(err))
        return ("ok", loaded.image.size, loaded.image.getpixel((size[0] - 1, size[1] - 1)))

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, cases * 3))

    for (source, size, colour), result in zip(cases * 3, results):
        if colour is None:
            assert result[0] == "error" and "MP" in result[1]
        else:
            assert result == ("ok", size, colour)
    assert warnings.filters == filters_before


def test_module_changes_no_pillow_globals_and_needs_no_gradio_or_torch() -> None:
    from PIL import ImageFile

    import explorer.core.images as images

    assert Image.MAX_IMAGE_PIXELS == int(1024 * 1024 * 1024 // 4 // 3)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    source = Path(images.__file__).read_text(encoding="utf-8")
    assert "import gradio" not in source and "import torch" not in source


# -------------------------------------------------------------------------- assets


def test_bundled_examples_load_and_are_licensed() -> None:
    assets = Path(__file__).resolve().parent.parent / "assets"
    examples = sorted((assets / "examples").glob("*.jpg"))
    assert examples, "assets/examples/ has no photos; run assets/make_examples.py"
    licences = (assets / "LICENSES.md").read_text(encoding="utf-8")
    for path in examples:
        loaded = load_image(path)
        assert loaded.source_format == "JPEG" and loaded.image.mode == "RGB"
        assert max(loaded.image.size) <= 640 and min(loaded.image.size) >= 256
        assert f"`examples/{path.name}`" in licences, f"{path.name} has no entry in LICENSES.md"


# ------------------------------------------------------------- public-server bounds


def png_of_rows(width: int, height: int, depth: int, colour_type: int, rows: list[bytes],
                before_pixels: tuple[bytes, ...] = (), after_pixels: tuple[bytes, ...] = ()) -> bytes:
    """A PNG written chunk by chunk (Pillow writes no 16-bit colour PNGs)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    body = b"".join(b"\x00" + row for row in rows)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + b"".join(before_pixels)
            + png_chunk(b"IDAT", zlib.compress(body)) + b"".join(after_pixels) + png_chunk(b"IEND", b""))


def test_48_bit_png_is_reduced_to_8_bits_with_a_note() -> None:
    values = np.random.default_rng(1).integers(0, 65536, (6, 9, 3)).astype(">u2")
    loaded = load_image(png_of_rows(9, 6, 16, 2, [row.tobytes() for row in values]))
    assert np.array_equal(pixels(loaded), (values.astype(np.int64) >> 8).astype(np.uint8))  # the high byte
    assert "48-bit rgb" in note_text(loaded) and "16 位" in loaded.note_texts("zh")[0]
    rgba = np.random.default_rng(2).integers(0, 65536, (4, 5, 4)).astype(">u2")
    assert "64-bit rgba" in note_text(load_image(png_of_rows(5, 4, 16, 6, [row.tobytes() for row in rgba])))
    assert "bit" not in note_text(load_image(encode(Image.new("RGB", (20, 20)), "PNG")))


@pytest.mark.parametrize("where", ["icc before the pixels", "text after the pixels"])
def test_png_with_oversized_metadata_keeps_its_pixels(where: str) -> None:
    red = np.zeros((20, 20, 3), np.uint8)
    red[..., 0] = 200
    rows = [row.tobytes() for row in red]
    huge = zlib.compress(b"\0" * 3_000_000)  # unpacks past Pillow's MAX_TEXT_CHUNK
    if where.startswith("icc"):
        data = png_of_rows(20, 20, 8, 2, rows, before_pixels=(png_chunk(b"iCCP", b"p\0\0" + huge),))
    else:
        data = png_of_rows(20, 20, 8, 2, rows, after_pixels=(png_chunk(b"zTXt", b"note\0\0" + huge),))
    with pytest.raises(ValueError, match="MAX_TEXT_CHUNK"):
        Image.open(io.BytesIO(data)).load()  # what Pillow alone says
    loaded = load_image(data)
    assert np.array_equal(pixels(loaded), red)
    assert "metadata" in note_text(loaded) and "元数据" in loaded.note_texts("zh")[0]


def test_large_images_become_a_bounded_working_copy(tmp_path: Path) -> None:
    from explorer.core.images import WORKING_SIDE

    picture = Image.new("RGB", (3000, 1200), (10, 20, 30))
    picture.paste((250, 0, 0), (0, 0, 1500, 1200))  # left half red
    for fmt in ("PNG", "JPEG"):
        loaded = load_image(encode(picture, fmt), max_side=1024)
        assert loaded.image.size == (1024, 410) and loaded.source_size == (3000, 1200)
        assert "3000×1200" in note_text(loaded) and "1024×410" in note_text(loaded)
        left, right = pixels(loaded)[200, 100], pixels(loaded)[200, 900]
        assert left[0] > 200 and right[0] < 40
    assert load_image(encode(picture, "PNG")).image.size == (3000, 1200)  # only when asked
    small = load_image(encode(Image.new("RGB", (640, 480)), "PNG"), max_side=WORKING_SIDE)
    assert small.image.size == (640, 480) and not small.notes
    assert WORKING_SIDE == 2048


def test_jpeg_is_decoded_at_reduced_scale(monkeypatch) -> None:
    """The full-size pixels of a large JPEG never exist: Pillow's draft mode decodes at 1/8."""
    import explorer.core.images as images

    decoded_sizes = []
    real = images._decode

    def spy(im, *args):
        decoded_sizes.append(im.size)
        return real(im, *args)

    monkeypatch.setattr(images, "_decode", spy)
    loaded = load_image(encode(Image.new("RGB", (8000, 4000), (90, 90, 90)), "JPEG", quality=70), max_side=1000)
    assert loaded.image.size == (1000, 500) and loaded.source_size == (8000, 4000)
    assert decoded_sizes == [(1000, 500)]  # 8000 / 8


def test_large_decodes_take_turns(monkeypatch) -> None:
    import explorer.core.images as images

    monkeypatch.setattr(images, "LARGE_DECODE_PIXELS", 10_000)
    active, most = [0], [0]
    real = images._decode

    def counting(*args, **kwargs):
        active[0] += 1
        most[0] = max(most[0], active[0])
        time.sleep(0.05)
        try:
            return real(*args, **kwargs)
        finally:
            active[0] -= 1

    monkeypatch.setattr(images, "_decode", counting)
    big, small = encode(Image.new("RGB", (200, 200)), "PNG"), encode(Image.new("RGB", (50, 50)), "PNG")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(load_image, [big] * 4))
    assert most[0] == 1
    most[0] = 0
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(load_image, [small] * 4))
    assert most[0] > 1  # small images never wait
