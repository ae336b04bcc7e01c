"""Counts the forward passes of the app's models, for tests and benchmarks that prove a slider,
a click or a language change re-runs nothing. It lives here, not in the app: a process-wide
pre-hook that counts the calls of models the capture has hooked (their top module only).

Tests count from the start (conftest.py calls ``start()``); a benchmark counts only inside
``counting()``, so the hook does not weigh on the forward passes it times."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import torch

_LOCK = threading.Lock()
_COUNT = [0]
_HANDLE = []


def _count(module, args) -> None:
    if getattr(module, "_explorer_hooks", None) == id(module):
        with _LOCK:
            _COUNT[0] += 1


def start() -> None:
    """Count every pass from now on (idempotent)."""
    if not _HANDLE:
        _HANDLE.append(torch.nn.modules.module.register_module_forward_pre_hook(_count))


def forward_count() -> int:
    """Forward passes run so far through models with the capture's hooks (while counting)."""
    return _COUNT[0]


@contextlib.contextmanager
def counting() -> Iterator[None]:
    """Count only within this block (benchmarks: around the redraw they check)."""
    started = not _HANDLE
    start()
    try:
        yield
    finally:
        if started:
            _HANDLE.pop().remove()
