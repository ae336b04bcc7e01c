"""Checkpoints uploaded to the page, each for one session.

An upload is opened as an architecture: the one its card names (``timm_model``, as ``add``
writes it), the one the user gives, or the one found from its keys (torchvision's ViT layouts by
their names; anything else as the first zoo model whose every key and shape fits, tried on
weightless skeletons, so nothing is built for real before it fits). The page keeps a small
record per session in one bounded store, reached only through the random token that session was
given; the weights stay in the upload folder they arrived in (never in ``checkpoints/``), and a
record that is evicted, expires or whose session ends takes its file with it. The loaded model
itself lives in the one model cache (core/weights.py), so the memory bound is that cache's.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from explorer.core.checkpoints import Card, is_torchvision_vit, torchvision_to_timm
from explorer.core.weights import (WeightsError, classes_in, filtered_state, fitted_state,
                                   read_state_dict, skeleton)
from explorer.core.zoo import TORCHVISION_VITS, ModelEntry, get_entry

log = logging.getLogger("explorer.uploads")

TOKEN_PREFIX = "upload:"
# One checkpoint's bytes; 0 turns uploading checkpoints off. 400 MB takes a fine-tuned ViT-B/16.
MAX_CHECKPOINT_BYTES = int(float(os.environ.get("EXPLORER_MAX_CHECKPOINT_MB", "400")) * 2**20)
# All sessions' uploaded checkpoints together (the oldest go first), and how many.
MAX_STORE_BYTES = int(float(os.environ.get("EXPLORER_UPLOADED_MODELS_MB", "4096")) * 2**20)
MAX_STORE_ITEMS = int(os.environ.get("EXPLORER_MAX_UPLOADED_MODELS", "64"))


def is_token(value: object) -> bool:
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(16)


@dataclass(frozen=True)
class Found:
    """An architecture for a checkpoint and how it was chosen (a sentence in each language)."""

    entry: ModelEntry
    how_en: str
    how_zh: str


def _fit(entry: ModelEntry, state: dict, name: str) -> tuple[float, str | None]:
    """How well a checkpoint fits an architecture: (share of keys in common, None when every key
    and shape fits, else what differs). Its classifier may have another number of classes."""
    model = skeleton(entry.key)
    try:
        filtered = filtered_state(model, state, name)  # official layouts renamed, as loading does
        classes = classes_in(model, filtered)
        if classes is not None and classes != getattr(model, "num_classes", classes):
            model = skeleton(entry.key, classes)
    except Exception as err:  # noqa: BLE001  (a filter that fails on this layout: not this one)
        log.debug("%s does not fit %s: %s: %s", name, entry.key, type(err).__name__, str(err)[:200])
        return 0.0, "its layout is another"
    own = {k: v.shape for k, v in model.state_dict().items()}
    common = own.keys() & filtered.keys()
    share = len(common) / max(1, len(own.keys() | filtered.keys()))
    try:
        fitted_state(model, filtered, name)
    except WeightsError as err:
        return share, err.message_en
    return share, None


def find_architecture(path: Path, name: str, candidates: Iterable[ModelEntry]) -> Found:
    """The architecture of a checkpoint whose card names none: torchvision's ViT by its key
    names, else the first of ``candidates`` whose every key and shape fits (its classifier may
    have another number of classes). ``WeightsError`` names the closest one and what differs."""
    state = read_state_dict(path, lazy=True)
    if is_torchvision_vit(state):
        converted = torchvision_to_timm(state)  # CardError for a torchvision ViT of no known size
        builder = next(k for k, v in TORCHVISION_VITS.items() if v == converted.timm_model)
        return Found(get_entry(builder), f"found from its keys: torchvision's {builder}",
                     f"根据键名识别：torchvision 的 {builder}")
    closest: tuple[float, ModelEntry | None, str] = (-1.0, None, "")
    keys = set(state)
    # those with exactly the file's keys first (timm's own layout needs no checkpoint filter)
    candidates = sorted(candidates, key=lambda e: set(skeleton(e.key).state_dict()) != keys)
    for entry in candidates:
        share, wrong = _fit(entry, state, name)
        if wrong is None:
            return Found(entry, "found from its keys and shapes: the first model in the list that fits them all; "
                         "give the architecture if it was another of the same shape",
                         "根据键名和形状识别：列表中第一个完全吻合的模型；如果是形状相同的另一个模型，请指定结构")
        if share > closest[0]:
            closest = (share, entry, wrong)
    some = [k[:50] for k in list(state)[:3]]
    _, entry, wrong = closest
    near_en = f" The closest is {entry.key}: {wrong}" if entry is not None else ""
    near_zh = f"最接近的是 {entry.key}：{wrong}" if entry is not None else ""
    raise WeightsError(
        f"{name} fits none of the listed architectures ({len(state)} tensors, e.g. {some}). Give its "
        f"architecture: the timm model it was fine-tuned from, e.g. vit_base_patch16_224.{near_en}",
        f"{name} 与列表中的任何结构都不吻合（{len(state)} 个张量，例如 {some}）。"
        f"请指定它的结构：微调所用的 timm 模型，例如 vit_base_patch16_224。{near_zh}")


@dataclass(frozen=True)
class Upload:
    """One session's uploaded checkpoint: where it is, what it is opened as, what came with it."""

    session: str
    file_name: str
    path: Path
    size: int
    found: Found
    card: Card | None = None


class UploadStore:
    """token -> Upload, at most ``max_items`` and ``max_bytes`` of files (the least recently used
    go first) and none unused for ``ttl_s``; one record per session (a new upload replaces it).
    ``discard`` deletes a record's file once no record names it."""

    def __init__(self, max_items: int = MAX_STORE_ITEMS, max_bytes: int = MAX_STORE_BYTES,
                 ttl_s: float = float(os.environ.get("EXPLORER_UPLOAD_TTL", "3600")),
                 discard: Callable[[Path], None] = lambda path: path.unlink(missing_ok=True)):
        self.max_items, self.max_bytes, self.ttl_s, self.discard = max_items, max_bytes, ttl_s, discard
        self._items: OrderedDict[str, tuple[Upload, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, token: str, upload: Upload, now: float | None = None) -> None:
        gone: list[Upload] = []
        with self._lock:
            old = self._items.pop(token, None)
            gone += [old[0]] if old is not None else []
            for other, (item, _) in list(self._items.items()):  # one per session
                if item.session == upload.session:
                    gone.append(self._items.pop(other)[0])
            self._items[token] = (upload, time.time() if now is None else now)
            gone += self._evict(now)
        self._discard(gone)

    def get(self, token: str, now: float | None = None) -> Upload | None:
        now = time.time() if now is None else now
        with self._lock:
            gone = self._evict(now)
            item = self._items.get(token)
            if item is not None:
                self._items[token] = (item[0], now)
                self._items.move_to_end(token)
        self._discard(gone)
        return item[0] if item is not None else None

    def holds(self, path: Path) -> bool:
        """Whether some record names the file at ``path``."""
        with self._lock:
            return any(u.path == path for u, _ in self._items.values())

    def drop_session(self, session: str) -> None:
        with self._lock:
            gone = [self._items.pop(t)[0] for t, (u, _) in list(self._items.items()) if u.session == session]
        self._discard(gone)

    def _evict(self, now: float | None) -> list[Upload]:
        now = time.time() if now is None else now
        gone = [self._items.pop(t)[0] for t, (_, used) in list(self._items.items()) if now - used > self.ttl_s]
        while self._items and (len(self._items) > self.max_items
                               or sum(u.size for u, _ in self._items.values()) > self.max_bytes):
            gone.append(self._items.popitem(last=False)[1][0])
        return gone

    def _discard(self, gone: list[Upload]) -> None:
        with self._lock:  # held while deleting: a record of the same file put meanwhile keeps it
            kept = {u.path for u, _ in self._items.values()}
            for upload in gone:
                if upload.path not in kept:
                    try:
                        self.discard(upload.path)
                    except OSError as err:
                        log.warning("could not delete %s: %s", upload.path, err)


UPLOADS = UploadStore()
