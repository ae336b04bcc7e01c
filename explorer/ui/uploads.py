"""What a public endpoint may read: files that reached this server as uploads to the app
(Gradio's upload folder) and the project's own example images. Any other path gets one and
the same message, whether or not something exists there, so a client cannot map the server's
disk; and what is kept per session is a working copy bounded in pixels."""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from typing import Any

from gradio.utils import get_upload_folder

from explorer.core.images import MAX_FILE_BYTES, WORKING_SIDE, ImageInputError, LoadedImage, check_byte_count, load_image
from explorer.core.zoo import REPO_ROOT

# The bundled pictures a page or a client may name (the gallery, NaViT's aspect-ratio set).
EXAMPLE_ROOTS = tuple(REPO_ROOT / "assets" / name for name in ("synthetic", "examples", "navit"))
MAX_PATH_CHARS = 4096


def not_uploaded() -> ImageInputError:
    return ImageInputError(
        "This file was not uploaded to this app. Upload the image (or pick an example) and try again.",
        "这个文件不是上传到本应用的文件。请上传图片（或选择一张示例图片）后再试。",
    )


def _upload_root() -> Path:
    # Read each time: tests and deployments set GRADIO_TEMP_DIR before launching.
    return Path(os.path.realpath(get_upload_folder()))


def _roots(examples: bool = True) -> list[Path]:
    return [_upload_root(), *((Path(os.path.realpath(r)) for r in EXAMPLE_ROOTS) if examples else ())]


def path_of(value: Any) -> str:
    """The path inside a Gradio FileData, its dict form, or a plain string; anything else is refused."""
    path = getattr(value, "path", None)
    if path is None and isinstance(value, dict):
        path = value.get("path")
    if path is None and isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
    if not isinstance(path, str) or not path or len(path) > MAX_PATH_CHARS or "\x00" in path:
        raise not_uploaded()
    return path


def uploaded_path(value: Any, examples: bool = True) -> Path:
    """The real path of an uploaded file or (with ``examples``) a bundled example;
    ``not_uploaded()`` otherwise.

    Symbolic links and ``..`` are resolved before the check, so a link inside the upload
    folder that points elsewhere is refused too; and anything that is not a regular file gets
    the same message, so not even the allowed folders can be mapped."""
    try:
        real = Path(os.path.realpath(path_of(value)))
        inside = any(real != root and real.is_relative_to(root) for root in _roots(examples))
        if not (inside and real.is_file()):
            raise not_uploaded()
    except (OSError, ValueError):
        raise not_uploaded() from None
    return real


def open_uploaded_image(value: Any) -> LoadedImage:
    """Validate and open an uploaded image as the session's working copy (long side at most
    ``WORKING_SIDE`` pixels)."""
    path = uploaded_path(value)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:  # the upload route takes checkpoints' sizes: keep no image this big
        from explorer.core.uploaded import UPLOADS

        if not UPLOADS.holds(path):  # a session's opened checkpoint named as an image stays
            discard_upload(path)
        check_byte_count(size)
    return load_image(path, max_side=WORKING_SIDE)


def discard_upload(path: Path) -> None:
    """Delete an uploaded file (and its folder once empty); nothing outside the upload folder."""
    real = Path(os.path.realpath(path))
    root = _upload_root()
    if real == root or not real.is_relative_to(root) or not real.is_file():
        return
    real.unlink(missing_ok=True)
    if real.parent != root:
        with contextlib.suppress(OSError):
            real.parent.rmdir()  # Gradio's folder for this one upload, only if now empty


# Gradio keeps each upload in <upload folder>/<hex digest>/<file name>.
_GRADIO_FOLDER_NAME = re.compile(r"[0-9a-f]{32,128}")


def sweep_uploads(max_age_s: float, now: float | None = None) -> int:
    """Delete uploads older than ``max_age_s`` left by an earlier run (Gradio's own cleanup
    only knows the files of the running server). Only Gradio's hash-named folders are touched,
    whatever else shares the folder. Returns the number of files deleted."""
    root = Path(get_upload_folder())
    if not root.is_dir():
        return 0
    now = time.time() if now is None else now
    deleted = 0
    for folder in root.iterdir():
        if not (folder.is_dir() and not folder.is_symlink() and _GRADIO_FOLDER_NAME.fullmatch(folder.name)):
            continue
        for file in folder.iterdir():
            try:
                if file.is_file() and not file.is_symlink() and now - file.lstat().st_mtime > max_age_s:
                    file.unlink()
                    deleted += 1
            except OSError:
                continue
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if now empty
    return deleted
