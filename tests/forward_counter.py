"""Counts the forward passes of the app's models, for tests and benchmarks that prove a slider,
a click or a language change re-runs nothing. It lives here, not in the app: one process-wide
pre-hook that counts the calls of models the capture has hooked (their top module only)."""

from __future__ import annotations

import threading

import torch

_LOCK = threading.Lock()
_COUNT = [0]


def _count(module, args) -> None:
    if getattr(module, "_explorer_hooks", None) == id(module):
        with _LOCK:
            _COUNT[0] += 1


torch.nn.modules.module.register_module_forward_pre_hook(_count)


def forward_count() -> int:
    """Forward passes run so far through models with the capture's hooks."""
    return _COUNT[0]
