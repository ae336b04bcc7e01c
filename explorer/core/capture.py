"""One forward pass that records what the lenses need: attention probabilities and the
shape of the tensors flowing through the model, for this very input.

Hooks are installed once per model and write into a recorder held in a ``ContextVar``, so
two requests running the same cached model in different threads each see only their own
tensors (hooks that append to a list on a shared model are a classic cross-talk bug).
Attention probabilities are recomputed from the hooked ``q`` and ``k`` as
softmax(q·kᵀ·scale + mask), which is exact whether timm's fused SDPA is on or off: fused
attention never materialises the probabilities, and flipping ``fused_attn`` per request
would be a global that another request could see mid-flight.
"""

from __future__ import annotations

import contextlib
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
from timm.layers import Attention
from torch import nn

__all__ = ["Capture", "capture_attention", "install_hooks", "forward_count", "prefix_token_names"]


@dataclass
class _Recorder:
    """Per-request scratch space the hooks write into."""

    attentions: dict[str, torch.Tensor] = field(default_factory=dict)
    stages: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    pending_q: dict[str, torch.Tensor] = field(default_factory=dict)
    pending_mask: dict[str, torch.Tensor | None] = field(default_factory=dict)
    wanted: frozenset[str] | None = None  # attention modules to record (None: all)

    def wants(self, name: str) -> bool:
        return self.wanted is None or name in self.wanted


_ACTIVE: ContextVar[_Recorder | None] = ContextVar("explorer_capture_recorder", default=None)

# Counts every forward pass of a hooked model (captured or bare). Tests and benchmarks use it
# to prove that a slider change does not re-run the model.
_FORWARDS = {"count": 0}
_FORWARDS_LOCK = threading.Lock()
_INSTALL_LOCK = threading.Lock()


def forward_count() -> int:
    """Number of forward passes run so far through models with explorer hooks."""
    return _FORWARDS["count"]


@dataclass
class Capture:
    """What one captured forward pass saw."""

    logits: torch.Tensor  # (B, K); pooled features when the model has no classifier
    attentions: list[torch.Tensor]  # one (B, heads, N, N) float32 tensor per block, in order
    stages: list[tuple[str, tuple[int, ...]]]  # (module name, output shape) in execution order
    num_prefix_tokens: int
    grid: tuple[int, int]  # patch grid (rows, cols) of this input


def _attention_hooks(name: str, module: Attention):
    """Hooks on one timm ``Attention``: stash q (and any mask), then build softmax from k."""

    def stash_mask(mod, args, kwargs):
        rec = _ACTIVE.get()
        if rec is not None and rec.wants(name):
            mask = kwargs.get("attn_mask", args[1] if len(args) > 1 else None)
            rec.pending_mask[name] = mask

    def stash_q(mod, args, q):
        rec = _ACTIVE.get()
        if rec is not None and rec.wants(name):
            rec.pending_q[name] = q

    def probabilities_from_k(mod, args, k):
        rec = _ACTIVE.get()
        if rec is None or not rec.wants(name):
            return
        q = rec.pending_q.pop(name)
        logits = (q.float() * module.scale) @ k.float().transpose(-2, -1)
        mask = rec.pending_mask.pop(name, None)
        if mask is not None:
            # Same convention as timm/SDPA: boolean True = may attend, float = additive bias.
            if mask.dtype == torch.bool:
                logits = logits.masked_fill(~mask, float("-inf"))
            else:
                logits = logits + mask.float()
        rec.attentions[name] = logits.softmax(dim=-1)

    module.register_forward_pre_hook(stash_mask, with_kwargs=True)
    module.q_norm.register_forward_hook(stash_q)
    module.k_norm.register_forward_hook(probabilities_from_k)


def _stage_hook(name: str):
    def record_shape(mod, args, out):
        rec = _ACTIVE.get()
        if rec is not None and isinstance(out, torch.Tensor):
            rec.stages.append((name, tuple(out.shape)))

    return record_shape


def _count_forward(mod, args):
    with _FORWARDS_LOCK:
        _FORWARDS["count"] += 1


# The modules whose outputs make the "shape through the model" table of a timm ViT.
_VIT_STAGE_MODULES = ("patch_embed", "pos_drop", "norm", "fc_norm", "head_drop", "head")


def install_hooks(model: nn.Module) -> nn.Module:
    """Install the capture hooks on ``model`` once (idempotent, thread-safe)."""
    with _INSTALL_LOCK:
        if getattr(model, "_explorer_hooks", False):
            return model
        model.register_forward_pre_hook(_count_forward)
        for name, module in model.named_modules():
            if isinstance(module, Attention):
                _attention_hooks(name, module)
        for name in _VIT_STAGE_MODULES:
            module = getattr(model, name, None)
            if isinstance(module, nn.Module) and not isinstance(module, nn.Identity):
                module.register_forward_hook(_stage_hook(name))
        for i, block in enumerate(getattr(model, "blocks", [])):
            block.register_forward_hook(_stage_hook(f"blocks.{i}"))
        model._explorer_hooks = True
    return model


@contextlib.contextmanager
def _recording(wanted: frozenset[str] | None = None):
    rec = _Recorder(wanted=wanted)
    token = _ACTIVE.set(rec)
    try:
        yield rec
    finally:
        _ACTIVE.reset(token)


def _patch_grid(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    ph, pw = model.patch_embed.patch_size
    return x.shape[-2] // ph, x.shape[-1] // pw


def capture_attention(model: nn.Module, x: torch.Tensor, blocks: tuple[int, ...] | None = None) -> Capture:
    """Run one no-grad forward pass of an eval-mode timm ViT and record its attention.

    Returns the logits, the softmax attention of every block — or only of ``blocks`` (indices,
    negative from the end), which saves their memory and time — (float32, rows sum to 1, N
    includes the prefix tokens) and the shape of each stage's output.
    """
    install_hooks(model)
    names = [n for n, m in model.named_modules() if isinstance(m, Attention)]
    if blocks is not None:
        names = [names[i] for i in blocks]
    with torch.inference_mode(), _recording(None if blocks is None else frozenset(names)) as rec:
        logits = model(x)
    missing = [n for n in names if n not in rec.attentions]
    if missing:
        raise RuntimeError(f"attention was not captured for {missing[:3]}")
    return Capture(
        logits=logits.float(),
        attentions=[rec.attentions[n] for n in names],
        stages=list(rec.stages),
        num_prefix_tokens=int(getattr(model, "num_prefix_tokens", 0)),
        grid=_patch_grid(model, x),
    )


def prefix_token_names(model: nn.Module) -> tuple[str, ...]:
    """Names of the tokens a timm ViT puts before the patches, in order."""
    names = []
    if getattr(model, "cls_token", None) is not None:
        names.append("CLS")
    if getattr(model, "dist_token", None) is not None:
        names.append("DIST")
    names += [f"REG{i + 1}" for i in range(getattr(model, "num_reg_tokens", 0))]
    missing = int(getattr(model, "num_prefix_tokens", 0)) - len(names)
    return tuple(names + [f"PREFIX{i}" for i in range(missing)])
