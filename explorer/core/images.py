"""Open and validate uploaded images and turn them into upright 8-bit RGB.

Odd inputs are converted, with a bilingual note saying what was done; unusable ones raise
``ImageInputError`` with English and Chinese messages fit to show to the user. A public server
bounds what one upload costs: ``max_side`` keeps a working copy no larger than the lenses need
(JPEGs are decoded at reduced size straight away), and large decodes take turns."""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import stat
import struct
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from explorer.core.errors import UserFacingError
from explorer.core.memory import release_freed_memory
from explorer.core.text import pick

__all__ = [
    "MAX_PIXELS",
    "WORKING_SIDE",
    "MAX_FILE_BYTES",
    "TINY_SIDE",
    "SUPPORTED_FORMATS",
    "ImageInputError",
    "LoadedImage",
    "load_image",
]

MAX_PIXELS: int = 64_000_000
MAX_FILE_BYTES: int = 50 * 1024 * 1024
# The long side of the copy the app keeps per session. Every lens resizes to a few hundred
# pixels (a model's input, a 640-px figure), so more would only cost memory: a 64 MP photo is
# 192 MB of RGB, a 2048-px copy at most 12.6 MB.
WORKING_SIDE: int = 2048
# Decodes above this many pixels take turns (one at a time): a few concurrent 64 MP uploads
# would otherwise add gigabytes at once and starve the other users' requests of both cores.
LARGE_DECODE_PIXELS: int = 16_000_000
# Below this many pixels on a side the model sees little more than an upsampled blur.
TINY_SIDE: int = 16

# What the user is told we read. The list is also passed to Image.open so that exotic plugins
# (EPS runs Ghostscript, for instance) never see uploads. Pillow's JPEG opener also returns the
# multi-picture JPEGs many phones write, as format "MPO"; we report those as JPEG.
SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WebP", "GIF", "BMP", "TIFF")
_PIL_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")
# How the user knows Pillow's format names, for messages.
_DISPLAY_NAMES = {"WEBP": "WebP"}
# Formats whose extra frames are an animation (otherwise they are pages or extra views).
_ANIMATED_FORMATS = frozenset({"GIF", "WEBP", "PNG"})

Note = tuple[str, str]  # (english, chinese)
_WHITE = (255, 255, 255)


class ImageInputError(UserFacingError):  # UserFacingError is a ValueError
    """A problem with the user's image, with a message fit to show to the user."""

    def __init__(self, message_en: str, message_zh: str) -> None:
        super().__init__(message_en, message_zh)
        self.message_en = message_en
        self.message_zh = message_zh

    def message(self, lang: str = "en") -> str:
        """The message in ``lang``: "zh" (or "zh-CN", ...) for Chinese, anything else English."""
        return pick((self.message_en, self.message_zh), lang)

    def __reduce__(self):  # keep both languages when pickled (e.g. across worker processes)
        return (type(self), (self.message_en, self.message_zh))


@dataclass(frozen=True)
class LoadedImage:
    """An upload turned into upright 8-bit RGB, with what was done to get there."""

    image: Image.Image
    digest: str
    source_size: tuple[int, int]
    source_mode: str
    source_format: str | None
    notes: tuple[Note, ...] = ()

    @property
    def nbytes(self) -> int:
        """Memory held by the pixels (RGB, 8 bits per channel)."""
        return self.image.width * self.image.height * 3

    def note_texts(self, lang: str = "en") -> list[str]:
        """The notes in one language ("en" or "zh")."""
        return [pick(note, lang) for note in self.notes]


# --------------------------------------------------------------------------- messages


def _mp(pixels: int | float) -> str:
    return f"{pixels / 1e6:.1f}"


def _too_many_pixels(pixels: int, max_pixels: int, size: tuple[int, int] | None) -> ImageInputError:
    what = f"{size[0]}×{size[1]} = {_mp(pixels)} MP" if size else f"{_mp(pixels)} MP"
    what_zh = f"{size[0]}×{size[1]} = {_mp(pixels)} 百万像素" if size else f"{_mp(pixels)} 百万像素"
    limit = f"{max_pixels / 1e6:g}"
    return ImageInputError(
        f"The image is too large: {what}; the limit is {limit} MP. "
        "Resize it (for example to 4000×3000 or smaller) and try again.",
        f"图片太大：{what_zh}，上限为 {limit} 百万像素。"
        "请先把图片缩小（例如缩到 4000×3000 或更小）再试。",
    )


def _not_an_image(data: bytes) -> ImageInputError:
    hint_en, hint_zh = _guess_non_image(data)
    formats = ", ".join(SUPPORTED_FORMATS)
    return ImageInputError(
        f"This file is not an image PIL can read{hint_en}; supported: {formats}. "
        "Convert it to PNG or JPEG and try again.",
        f"这个文件不是 PIL 能读取的图片{hint_zh}；支持的格式：{'、'.join(SUPPORTED_FORMATS)}。"
        "请先转换为 PNG 或 JPEG 再试。",
    )


def _corrupt(fmt: str | None, detail: BaseException | str) -> ImageInputError:
    detail = str(detail).strip() or type(detail).__name__
    kind_en = f"{fmt} file" if fmt else "file"
    kind_zh = f" {fmt} 文件" if fmt else "文件"
    return ImageInputError(
        f"The {kind_en} is truncated or corrupt ({detail}). "
        "Re-save or re-download the image and try again.",
        f"该{kind_zh}不完整或已损坏（{detail}）。请重新保存或重新下载图片后再试。",
    )


def _unsupported_mode(mode: str) -> ImageInputError:
    return ImageInputError(
        f"The image uses the colour mode {mode!r}, which cannot be converted to RGB. "
        "Save it as an ordinary RGB PNG or JPEG and try again.",
        f"图片的颜色模式为 {mode!r}，无法转换为 RGB。请另存为普通的 RGB PNG 或 JPEG 后再试。",
    )


# Leading bytes of files people upload by mistake, so the message can say what it looks like.
_NON_IMAGE_SIGNATURES: tuple[tuple[bytes, int, str, str], ...] = (
    (b"%PDF", 0, "PDF document", "PDF 文档"),
    (b"PK\x03\x04", 0, "ZIP archive", "ZIP 压缩包"),
    (b"ftypheic", 4, "HEIC photo", "HEIC 照片"),
    (b"ftypheix", 4, "HEIC photo", "HEIC 照片"),
    (b"ftypmif1", 4, "HEIF photo", "HEIF 照片"),
    (b"<svg", 0, "SVG drawing", "SVG 矢量图"),
)


# Leading bytes of the formats we read. Pillow reports a header it cannot parse as "cannot
# identify image file"; when the signature is one of ours, the file is damaged, not foreign.
_IMAGE_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WebP"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
)


def _signature_format(data: bytes) -> str | None:
    for signature, offset, name in _IMAGE_SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            return name
    return None


def _guess_non_image(data: bytes) -> tuple[str, str]:
    head = data[:64]
    for signature, offset, name_en, name_zh in _NON_IMAGE_SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return f" (it looks like a {name_en})", f"（看起来是 {name_zh}）"
    if b"<svg" in data[:1024]:
        return " (it looks like an SVG drawing)", "（看起来是 SVG 矢量图）"
    return "", ""


# ------------------------------------------------------------------------- raw bytes


def _read_file(path: str | os.PathLike) -> bytes:
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except FileNotFoundError:
        raise ImageInputError(
            f"File not found: {name}. Check the path or upload the image again.",
            f"找不到文件：{name}。请检查路径或重新上传图片。",
        ) from None
    except (OSError, ValueError) as exc:  # ValueError: e.g. a NUL byte in the path
        raise ImageInputError(
            f"Cannot open {name}: {exc}.", f"无法打开 {name}：{exc}。"
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageInputError(
            f"{name} is a folder, not an image file. Choose an image file inside it.",
            f"{name} 是一个文件夹，而不是图片文件。请选择其中的某个图片文件。",
        )
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or device would block or never end: refuse before opening it.
        raise ImageInputError(
            f"{name} is not a regular file. Choose an image file.",
            f"{name} 不是普通文件。请选择一个图片文件。",
        )
    check_byte_count(info.st_size)
    try:
        with open(name, "rb") as fh:
            # Read one byte past the limit so a file that grew after stat() is still caught.
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ImageInputError(
            f"Cannot read {name}: {exc.strerror or exc}.", f"无法读取 {name}：{exc.strerror or exc}。"
        ) from None
    check_byte_count(len(data))
    return data


def check_byte_count(n: int) -> None:
    if n == 0:
        raise ImageInputError(
            "The file is empty (0 bytes). Upload it again or choose another image.",
            "文件为空（0 字节）。请重新上传或换一张图片。",
        )
    if n > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES // (1024 * 1024)
        raise ImageInputError(
            f"The file is {n / 2**20:.1f} MB; the limit is {limit} MB. "
            "Save the image smaller or as JPEG and try again.",
            f"文件大小为 {n / 2**20:.1f} MB，超过 {limit} MB 的上限。"
            "请把图片缩小或另存为 JPEG 后再试。",
        )


# ------------------------------------------------------------------ decompression bombs

# warnings.catch_warnings swaps the process-wide filter list on entry and puts the saved one
# back on exit, so two threads inside it at once can restore each other's lists and leave a
# filter behind for good. Our own callers therefore take turns; only header parsing (no pixel
# decoding) happens while the lock is held, so the wait is milliseconds.
_WARNINGS_LOCK = threading.Lock()


@contextmanager
def _bomb_warnings_as_errors() -> Iterator[None]:
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


# Where the width and height sit in headers that are trivial to forge with huge sizes. Used only
# to word the message when Pillow itself refuses an image before we get to see its size.
_HEADER_SIZES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 16, ">II"),  # IHDR: width, height
    (b"GIF87a", 6, "<HH"),  # logical screen width, height
    (b"GIF89a", 6, "<HH"),
    (b"BM", 18, "<ii"),  # BITMAPINFOHEADER width, height (negative height = top-down)
)


def _sniff_size(data: bytes) -> tuple[int, int] | None:
    for signature, offset, layout in _HEADER_SIZES:
        if data.startswith(signature) and len(data) >= offset + struct.calcsize(layout):
            width, height = struct.unpack_from(layout, data, offset)
            return abs(width), abs(height)
    return None


def _bomb_error(exc: BaseException, data: bytes | None, max_pixels: int) -> ImageInputError:
    # Pillow's message reads "Image size (N pixels) exceeds limit of ...".
    found = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = int(found.group(1)) if found else None
    size = _sniff_size(data) if data else None
    # Pillow may have refused a later GIF frame rather than the header's canvas: name the
    # width and height only when they account for the pixels Pillow counted.
    if size and (pixels is None or size[0] * size[1] == pixels):
        return _too_many_pixels(size[0] * size[1], max_pixels, size)
    return _too_many_pixels(pixels if pixels is not None else max_pixels + 1, max_pixels, None)


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageInputError(
            f"The image has no pixels ({width}×{height}). Choose another image.",
            f"图片没有任何像素（{width}×{height}）。请换一张图片。",
        )
    if width * height > max_pixels:
        raise _too_many_pixels(width * height, max_pixels, size)


_BOMB_EXCEPTIONS = (Image.DecompressionBombError, Image.DecompressionBombWarning)


# ------------------------------------------------------------------------- decoding


class _MetadataTooLarge(Exception):
    """Pillow refused a PNG's text or ICC chunk as too large to unpack; the pixels may be fine."""


def _metadata_overflow(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and ("MAX_TEXT_CHUNK" in str(exc) or "MAX_TEXT_MEMORY" in str(exc))


def _open_encoded(data: bytes, max_pixels: int) -> tuple[Image.Image, int]:
    """Parse the header only, refuse oversized images, and count frames. Nothing is decoded."""
    try:
        with _bomb_warnings_as_errors():
            im = Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
            try:
                _check_pixels(im.size, max_pixels)
                # Counting GIF frames walks their headers, which runs Pillow's bomb check again.
                n_frames = int(getattr(im, "n_frames", 1) or 1)
                im.seek(0)
            except BaseException:
                im.close()
                raise
    except ImageInputError:
        raise
    except _BOMB_EXCEPTIONS as exc:
        raise _bomb_error(exc, data, max_pixels) from None
    except UnidentifiedImageError:
        fmt = _signature_format(data)
        if fmt:
            raise _corrupt(fmt, "its header cannot be parsed") from None
        raise _not_an_image(data) from None
    except Exception as exc:  # noqa: BLE001 - a malformed header can raise almost anything
        if _metadata_overflow(exc):
            raise _MetadataTooLarge() from None
        raise _corrupt(_signature_format(data), exc) from None
    return im, n_frames


def _decode(im: Image.Image, fmt: str | None, max_pixels: int) -> None:
    try:
        im.load()
    except _BOMB_EXCEPTIONS as exc:
        raise _bomb_error(exc, None, max_pixels) from None
    except MemoryError:
        raise ImageInputError(
            "Not enough memory to decode this image. Resize it and try again.",
            "内存不足，无法解码这张图片。请缩小图片后再试。",
        ) from None
    except Exception as exc:  # noqa: BLE001 - plugins report damaged data in many exception types
        if _metadata_overflow(exc):  # text chunks after the pixels are read at the end
            raise _MetadataTooLarge() from None
        raise _corrupt(fmt, exc) from None


_LARGE_DECODES = threading.BoundedSemaphore(1)


@contextmanager
def _decode_turn(size: tuple[int, int]) -> Iterator[None]:
    """Large images decode one at a time; small ones never wait. Afterwards the freed decode
    buffers go back to the OS (see ``explorer.core.memory``)."""
    if size[0] * size[1] <= LARGE_DECODE_PIXELS:
        yield
        return
    with _LARGE_DECODES:
        try:
            yield
        finally:
            release_freed_memory()


# ------------------------------------------------------------------- PNG metadata

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_METADATA_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"iCCP"})
_METADATA_NOTE: Note = (
    "The PNG's metadata (text or ICC colour-profile chunks) is too large to read and was ignored; "
    "the pixels are used as stored.",
    "PNG 的元数据（文本或 ICC 色彩配置块）过大，无法读取，已忽略；像素按原样使用。",
)


def _without_png_metadata(data: bytes) -> bytes | None:
    """The same PNG without its text and ICC chunks (None when it is no PNG chunk stream).

    Pillow's limits on those chunks are module globals: raising them for one upload would
    raise them for every thread, so the chunks are left out of a copy instead."""
    if not data.startswith(_PNG_SIGNATURE):
        return None
    parts, pos = [_PNG_SIGNATURE], len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length  # length, type, data, CRC
        if end > len(data):  # truncated: keep the rest, Pillow will say what is wrong
            parts.append(data[pos:])
            break
        if kind not in _PNG_METADATA_CHUNKS:
            parts.append(data[pos:end])
        pos = end
        if kind == b"IEND":
            break
    return b"".join(parts)


def _depth_notes(im: Image.Image) -> list[Note]:
    """Pillow opens 16-bit-per-channel colour (48-bit RGB, 64-bit RGBA) as 8-bit RGB(A),
    keeping the high byte; only the undecoded tile's raw mode still says so."""
    if im.mode not in ("RGB", "RGBA"):
        return []
    for tile in getattr(im, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        rawmode = args if isinstance(args, str) else (
            args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else "")
        if ";16" in rawmode:
            bits = 16 * len(im.mode)
            return [(
                f"{bits}-bit {im.mode} image (16 bits per channel) reduced to 8 bits per channel "
                "(0–65535 → 0–255).",
                f"{bits} 位 {im.mode} 图像（每通道 16 位）已缩减为每通道 8 位（0–65535 → 0–255）。",
            )]
    return []


def _draft(im: Image.Image, max_side: int | None) -> None:
    """Let a JPEG decode at 1/2, 1/4 or 1/8 scale when that still covers ``max_side``:
    the full-size pixels then never exist in memory."""
    if max_side and im.format in ("JPEG", "MPO") and max(im.size) > max_side:
        scale = max_side / max(im.size)
        im.draft(None, (math.ceil(im.width * scale), math.ceil(im.height * scale)))


def _fit(rgb: Image.Image, max_side: int | None, stored: tuple[int, int]) -> tuple[Image.Image, list[Note]]:
    if not max_side or max(rgb.size) <= max_side:
        return rgb, []
    scale = max_side / max(rgb.size)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    small = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return small, [(
        f"Large image ({stored[0]}×{stored[1]} px): a working copy of {size[0]}×{size[1]} px is analysed "
        "(every model sees at most a few hundred pixels).",
        f"图片较大（{stored[0]}×{stored[1]} 像素）：分析使用 {size[0]}×{size[1]} 像素的工作副本"
        "（模型实际看到的最多只有几百像素）。",
    )]


def _frames_note(n_frames: int, fmt: str | None) -> Note:
    if fmt in _ANIMATED_FORMATS:
        return (
            f"Animated image with {n_frames} frames: the first frame is used.",
            f"动图共有 {n_frames} 帧：只使用第一帧。",
        )
    return (
        f"The file holds {n_frames} images (pages or views): the first one is used.",
        f"文件包含 {n_frames} 张图像（多页或多视角）：只使用第一张。",
    )


# ----------------------------------------------------------------- orientation (EXIF)

_ORIENTATION_TAG = 0x0112


def _apply_exif_orientation(im: Image.Image) -> tuple[Image.Image, list[Note]]:
    try:
        orientation = im.getexif().get(_ORIENTATION_TAG)
    except Exception:  # noqa: BLE001 - broken EXIF must not cost the user the image
        return im, [
            (
                "The photo's EXIF data could not be read; the image is shown as stored.",
                "无法读取照片的 EXIF 信息；图片按原样显示。",
            )
        ]
    if orientation not in (2, 3, 4, 5, 6, 7, 8):
        return im, []
    try:
        upright = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001
        return im, [
            (
                f"The EXIF orientation tag ({orientation}) could not be applied; the image is shown as stored.",
                f"无法应用 EXIF 方向标记（{orientation}）；图片按原样显示。",
            )
        ]
    return upright, [
        (
            f"Turned upright using the photo's EXIF orientation tag ({orientation}).",
            f"已根据照片的 EXIF 方向标记（{orientation}）旋转/翻转为正立方向。",
        )
    ]


# ------------------------------------------------------------------- pixel scaling


def _to_uint8(values: np.ndarray, what_en: str, what_zh: str) -> tuple[np.ndarray, list[Note]]:
    """Map any numeric array to uint8 without clipping away its content.

    uint8 passes through; 16-bit unsigned integers are scaled by their bit depth (so a dark
    16-bit photo stays dark); floats in 0..1 are the usual convention and scale by 255, floats
    in 0..255 are only rounded; any other range (32-bit integers, arbitrary floats) is
    stretched from its own min..max.
    """
    notes: list[Note] = []
    dtype = values.dtype
    if dtype == np.uint8:
        return values, notes
    if dtype == np.bool_:
        return values.astype(np.uint8) * 255, notes
    if dtype.kind not in "uif":
        raise ImageInputError(
            f"Unsupported pixel type {dtype}: use uint8, uint16 or float values.",
            f"不支持的像素类型 {dtype}：请使用 uint8、uint16 或浮点数值。",
        )
    if dtype.kind == "u" and dtype.itemsize == 2:
        notes.append(
            (
                f"16-bit {what_en} scaled to 8 bits per channel (0–65535 → 0–255).",
                f"16 位{what_zh}已缩放为每通道 8 位（0–65535 → 0–255）。",
            )
        )
        return _round_u8(values.astype(np.float32) * (255.0 / 65535.0)), notes

    values = values.astype(np.float32)  # float32 halves the memory; 8-bit output needs no more
    finite = np.isfinite(values)
    if not finite.all():
        bad = int((~finite).sum())
        notes.append(
            (
                f"{bad} NaN or infinite values are shown as black.",
                f"{bad} 个 NaN 或无穷大的值显示为黑色。",
            )
        )
        if not finite.any():
            return np.zeros(values.shape, np.uint8), notes
    lo, hi = float(values[finite].min()), float(values[finite].max())
    values = np.where(finite, values, lo)

    if dtype.kind in "ui" and lo >= 0 and hi <= 255:
        return values.astype(np.uint8), notes  # already 8-bit values in a wider type
    if dtype.kind == "f" and lo >= 0 and hi <= 1:
        notes.append(
            (
                f"Floating-point {what_en} with values in 0–1 scaled to 0–255.",
                f"取值在 0–1 之间的浮点{what_zh}已缩放到 0–255。",
            )
        )
        out = values * 255.0
    elif dtype.kind == "f" and lo >= 0 and hi <= 255:
        # Floats already on the 0..255 scale (e.g. arr.astype(float) of a photo): stretching
        # them would change the picture's brightness and contrast.
        notes.append(
            (
                f"Floating-point {what_en} with values in 0–255 rounded to 8 bits.",
                f"取值在 0–255 之间的浮点{what_zh}已取整为 8 位。",
            )
        )
        out = values
    elif hi > lo:
        notes.append(
            (
                f"{dtype} {what_en} rescaled from its value range {lo:g}–{hi:g} to 0–255.",
                f"{dtype} {what_zh}已按其数值范围 {lo:g}–{hi:g} 线性缩放到 0–255。",
            )
        )
        out = (values - lo) * (255.0 / (hi - lo))
    else:
        notes.append(
            (
                f"{dtype} {what_en} has the single value {lo:g} everywhere; it is shown as black.",
                f"{dtype} {what_zh}所有像素都是同一个值 {lo:g}；显示为黑色。",
            )
        )
        out = np.zeros_like(values)
    if not finite.all():
        out = np.where(finite, out, 0.0)
    return _round_u8(out), notes


def _round_u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- mode -> RGB table

_GRAY_NOTE: Note = (
    "Grayscale image: the gray value is copied to the R, G and B channels.",
    "灰度图像：灰度值已复制到 R、G、B 三个通道。",
)
_ALPHA_NOTE: Note = (
    "Transparent areas were composited on a white background.",
    "透明区域已叠加到白色背景上。",
)


def _keep(im: Image.Image) -> tuple[Image.Image, list[Note]]:
    return im.copy(), []  # a copy, so the result never shares pixels with the caller's object


def _plain(im: Image.Image) -> tuple[Image.Image, list[Note]]:
    return im.convert("RGB"), []


def _gray(im: Image.Image) -> tuple[Image.Image, list[Note]]:
    return im.convert("RGB"), [_GRAY_NOTE]


def _with_alpha(im: Image.Image) -> tuple[Image.Image, list[Note]]:
    rgba = im.convert("RGBA")
    notes = [_GRAY_NOTE] if im.mode in ("LA", "La") else []
    if rgba.getchannel("A").getextrema()[0] == 255:
        return rgba.convert("RGB"), notes  # fully opaque: nothing to composite
    white = Image.new("RGBA", rgba.size, _WHITE + (255,))
    return Image.alpha_composite(white, rgba).convert("RGB"), notes + [_ALPHA_NOTE]


def _premultiplied(im: Image.Image) -> tuple[Image.Image, list[Note]]:
    # Pillow converts "La" only to "LA"; from there the ordinary alpha path applies.
    return _with_alpha(im.convert("LA") if im.mode == "La" else im)


def _palette(im: Image.Image) -> tuple[Image.Image, list[Note]]:
    if "transparency" in im.info:
        return _with_alpha(im)
    return im.convert("RGB"), []


def _high_depth(im: Image.Image) -> tuple[Image.Image, list[Note]]:
    gray, notes = _to_uint8(np.asarray(im), "image", "图像")
    return Image.fromarray(gray, "L").convert("RGB"), notes + [_GRAY_NOTE]


_SRGB = "sRGB"


def _cmyk(im: Image.Image) -> tuple[Image.Image, list[Note]]:
    icc = im.info.get("icc_profile")
    if icc:
        try:
            # The embedded profile knows the press inks; Pillow's naive formula does not.
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            rgb = ImageCms.profileToProfile(im, source, ImageCms.createProfile(_SRGB), outputMode="RGB")
            if rgb is not None:
                return rgb, [
                    (
                        "CMYK image converted to RGB using its embedded ICC colour profile.",
                        "CMYK 图像已使用内嵌的 ICC 色彩配置文件转换为 RGB。",
                    )
                ]
        except Exception:  # noqa: BLE001 - a broken profile falls back to the plain formula
            pass
    return im.convert("RGB"), [
        ("CMYK image converted to RGB.", "CMYK 图像已转换为 RGB。"),
    ]


def _lab(im: Image.Image) -> tuple[Image.Image, list[Note]]:
    # Image.convert("RGB") copies LAB bytes as if they were RGB; a colour transform is needed.
    transform = ImageCms.buildTransform(
        ImageCms.createProfile("LAB"), ImageCms.createProfile(_SRGB), "LAB", "RGB"
    )
    return ImageCms.applyTransform(im, transform), [
        ("CIELAB image converted to RGB.", "CIELAB 图像已转换为 RGB。"),
    ]


def _colour_space(name: str) -> Callable[[Image.Image], tuple[Image.Image, list[Note]]]:
    def convert(im: Image.Image) -> tuple[Image.Image, list[Note]]:
        return im.convert("RGB"), [(f"{name} image converted to RGB.", f"{name} 图像已转换为 RGB。")]

    return convert


_TO_RGB: dict[str, Callable[[Image.Image], tuple[Image.Image, list[Note]]]] = {
    "RGB": _keep,
    "RGBX": _plain,
    "1": _gray,
    "L": _gray,
    "P": _palette,
    "PA": _with_alpha,
    "LA": _with_alpha,
    "La": _premultiplied,
    "RGBA": _with_alpha,
    "RGBa": _with_alpha,
    "CMYK": _cmyk,
    "YCbCr": _colour_space("YCbCr"),
    "HSV": _colour_space("HSV"),
    "LAB": _lab,
    "I": _high_depth,
    "I;16": _high_depth,
    "I;16L": _high_depth,
    "I;16B": _high_depth,
    "I;16N": _high_depth,
    "F": _high_depth,
}


def _to_rgb(im: Image.Image) -> tuple[Image.Image, list[Note]]:
    handler = _TO_RGB.get(im.mode)
    if handler is None:
        raise _unsupported_mode(im.mode)
    try:
        rgb, notes = handler(im)
    except ImageInputError:
        raise
    except MemoryError:
        raise ImageInputError(
            "Not enough memory to convert this image. Resize it and try again.",
            "内存不足，无法转换这张图片。请缩小图片后再试。",
        ) from None
    except Exception:  # noqa: BLE001 - e.g. a palette or profile Pillow cannot apply
        raise _unsupported_mode(im.mode) from None
    if rgb.mode != "RGB":  # defensive: every handler should already return RGB
        rgb = rgb.convert("RGB")
    return rgb, notes


# ------------------------------------------------------------------------ assembling


def _digest(rgb: Image.Image) -> str:
    h = hashlib.sha256()
    h.update(struct.pack(">II", *rgb.size))
    h.update(rgb.tobytes())
    return h.hexdigest()


def _tiny_note(size: tuple[int, int]) -> list[Note]:
    width, height = size
    if min(width, height) >= TINY_SIDE:
        return []
    return [
        (
            f"Tiny image ({width}×{height} px): it will be upsampled to the model's input size, "
            "so the model sees mostly blur.",
            f"图片很小（{width}×{height} 像素）：会被放大到模型的输入尺寸，"
            "模型看到的主要是模糊的色块。",
        )
    ]


def _finish(
    im: Image.Image, source_format: str | None, notes: list[Note], source_mode: str | None = None,
    max_side: int | None = None, source_size: tuple[int, int] | None = None,
) -> LoadedImage:
    """Orientation, colour conversion, the working-size bound and bookkeeping shared by every
    kind of input."""
    source_size = source_size or im.size
    source_mode = source_mode or im.mode
    upright, exif_notes = _apply_exif_orientation(im)
    rgb, mode_notes = _to_rgb(upright)
    # the note names the upright size, like the working copy (EXIF may have turned the picture)
    turned = (im.width > im.height) != (rgb.width > rgb.height)
    upright_size = source_size[::-1] if turned else source_size
    rgb, fit_notes = _fit(rgb, max_side, upright_size)
    all_notes = notes + exif_notes + mode_notes + fit_notes + _tiny_note(rgb.size)
    return LoadedImage(
        image=rgb,
        digest=_digest(rgb),
        source_size=source_size,
        source_mode=source_mode,
        source_format=source_format,
        notes=tuple(all_notes),
    )


def _decode_bytes(data: bytes, max_pixels: int, max_side: int | None, notes: list[Note]) -> LoadedImage:
    im, n_frames = _open_encoded(data, max_pixels)
    with _decode_turn(im.size), im:  # the decoded pixels are freed (im closed) before the turn ends
        fmt = "JPEG" if im.format == "MPO" else im.format
        source_size = im.size
        notes = notes + _depth_notes(im)
        _draft(im, max_side)
        _decode(im, _DISPLAY_NAMES.get(fmt, fmt), max_pixels)
        if n_frames > 1:
            notes.append(_frames_note(n_frames, fmt))
        return _finish(im, fmt, notes, max_side=max_side, source_size=source_size)


def _from_bytes(data: bytes, max_pixels: int, max_side: int | None = None) -> LoadedImage:
    try:
        return _decode_bytes(data, max_pixels, max_side, [])
    except _MetadataTooLarge:
        pass
    stripped = _without_png_metadata(data)
    try:
        if stripped is None:
            raise _MetadataTooLarge()
        return _decode_bytes(stripped, max_pixels, max_side, [_METADATA_NOTE])
    except _MetadataTooLarge:
        raise _corrupt(_signature_format(data), "its metadata cannot be read") from None


def _from_pil(im: Image.Image, max_pixels: int, max_side: int | None = None) -> LoadedImage:
    # The caller's object is only read: its current frame is used and it is never seeked,
    # so one image shared between threads stays safe.
    _check_pixels(im.size, max_pixels)
    with _decode_turn(im.size):
        _decode(im, None, max_pixels)
        return _finish(im, None, [], max_side=max_side)


# numpy layout -> Pillow mode for uint8 pixels, and (dtype kind, bytes) -> mode of a gray file.
_ARRAY_MODES = {2: "L", 3: "RGB", 4: "RGBA"}
_GRAY_ARRAY_MODES = {("b", 1): "1", ("u", 2): "I;16", ("i", 4): "I", ("f", 4): "F", ("f", 8): "F"}


def _from_array(arr: np.ndarray, max_pixels: int, max_side: int | None = None) -> LoadedImage:
    notes: list[Note] = []
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[2] not in (1, 3, 4):
        # Channels-first, as torch tensors come: move channels last.
        arr = np.moveaxis(arr, 0, -1)
        notes.append(
            ("Channels-first array (C×H×W) read as H×W×C.", "通道在前的数组（C×H×W）已按 H×W×C 读取。")
        )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    channels = 2 if arr.ndim == 2 else (arr.shape[2] if arr.ndim == 3 else 0)
    if channels not in _ARRAY_MODES:
        raise ImageInputError(
            f"Cannot read an array of shape {arr.shape} as an image: "
            "use H×W (gray), H×W×3 (RGB) or H×W×4 (RGBA).",
            f"无法把形状为 {arr.shape} 的数组当作图片："
            "请使用 H×W（灰度）、H×W×3（RGB）或 H×W×4（RGBA）。",
        )
    height, width = arr.shape[:2]
    _check_pixels((width, height), max_pixels)

    mode = _ARRAY_MODES[channels]
    # Report the Pillow mode a file with these pixels would have had.
    source_mode = _GRAY_ARRAY_MODES.get((arr.dtype.kind, arr.dtype.itemsize), mode) if channels == 2 else mode
    what = ("image", "图像") if channels == 2 else ("array", "数组")
    pixels, scale_notes = _to_uint8(np.ascontiguousarray(arr), *what)
    im = Image.fromarray(pixels, mode)
    return _finish(im, None, notes + scale_notes, source_mode=source_mode, max_side=max_side)


def load_image(
    source: str | os.PathLike | bytes | Image.Image | np.ndarray,
    max_pixels: int = MAX_PIXELS,
    max_side: int | None = None,
) -> LoadedImage:
    """Open ``source`` and return it as upright 8-bit RGB, or raise ``ImageInputError``.

    ``source`` is a file path, the file's bytes, a PIL image or a numpy array (H×W, H×W×3 or
    H×W×4; uint8, uint16, bool or float in 0..1). Images with more than ``max_pixels`` pixels are
    refused from the header, before any pixel is decoded. With ``max_side`` the result is at most
    that many pixels on its long side (the app keeps ``WORKING_SIDE``). Every conversion applied
    is listed in ``LoadedImage.notes`` in English and Chinese. Safe to call from several threads
    at once.
    """
    if isinstance(source, Image.Image):
        return _from_pil(source, max_pixels, max_side)
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels, max_side)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        check_byte_count(len(data))
        return _from_bytes(data, max_pixels, max_side)
    if isinstance(source, (str, os.PathLike)):
        return _from_bytes(_read_file(source), max_pixels, max_side)
    raise ImageInputError(
        f"Cannot read an image from a {type(source).__name__}: "
        "pass a file path, the file's bytes, a PIL image or a numpy array.",
        f"无法从 {type(source).__name__} 类型读取图片："
        "请传入文件路径、文件字节、PIL 图像或 numpy 数组。",
    )
