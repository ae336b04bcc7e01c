"""One forward pass that records what the lenses need: attention probabilities (with their
content, bias and mask where the lens splits them) and the shape of the tensors flowing through
the model, for this very input.

One mechanism for every kind of attention: hooks are installed once per model, an adapter per
kind — timm's ``Attention`` (ViT, DeiT, DINO, NaViT and MAE blocks), Swin's and SwinV2's
``WindowAttention``, Twins' locally-grouped and global sub-sampled attention (and its PEG),
CrossFormer's group attention — and every hook writes into the recorder of the request that
runs the forward, held in a ``ContextVar``: two requests running the same cached model in
different threads each see only their own tensors, and nothing is added to or removed from a
shared model per request. Probabilities are recomputed from the hooked ``q`` and ``k`` as
softmax(q·kᵀ·scale + bias + mask), which is exact whether timm's fused SDPA is on or off:
fused attention never materialises them, and flipping ``fused_attn`` per request would be a
global that another request could see mid-flight. No model records from inside its forward.
"""

from __future__ import annotations

import contextlib
import math
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import Attention
from timm.models.swin_transformer import WindowAttention
from timm.models.swin_transformer_v2 import WindowAttention as WindowAttentionV2
from timm.models.twins import GlobalSubSampleAttn, LocallyGroupedAttn, PosConv
from torch import nn

from explorer.core.devices import device_of
from explorer.models.crossformer import Attention as GroupAttention
from explorer.models.crossformer import AttentionRecord, RPBAttention

__all__ = ["Capture", "WindowRecord", "capture_attention", "capture", "install_hooks",
           "prefix_token_names"]


@dataclass
class _Recorder:
    """Per-request scratch space the hooks write into."""

    attentions: dict[str, torch.Tensor] = field(default_factory=dict)
    stages: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    pending_q: dict[str, torch.Tensor] = field(default_factory=dict)
    pending_mask: dict[str, torch.Tensor | None] = field(default_factory=dict)
    wanted: frozenset[str] | None = None  # attention modules to record (None: all)
    records: dict[str, object] = field(default_factory=dict)  # module name -> what its adapter saw
    pending: dict[str, object] = field(default_factory=dict)  # values in flight inside one module's call
    keep: frozenset[str] = frozenset()  # stage modules whose outputs to keep (names as in ``stages``)
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)

    def wants(self, name: str) -> bool:
        return self.wanted is None or name in self.wanted


_ACTIVE: ContextVar[_Recorder | None] = ContextVar("explorer_capture_recorder", default=None)

_INSTALL_LOCK = threading.Lock()


@dataclass
class Capture:
    """What one captured forward pass saw."""

    logits: torch.Tensor  # (B, K); pooled features when the model has no classifier
    attentions: list[torch.Tensor]  # one (B, heads, N, N) float32 tensor per block, in order
    stages: list[tuple[str, tuple[int, ...]]]  # (module name, output shape) in execution order
    num_prefix_tokens: int
    grid: tuple[int, int]  # patch grid (rows, cols) of this input
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)  # the stage outputs asked for (``keep``)


def _after(target: nn.Module, fn) -> None:
    """A forward hook that acts only for ``target`` itself. A deep copy of a hooked model (e.g.
    CrossFormer's DPB -> RPB conversion) carries copies of the hooks, still bound to the
    original modules: there they stay inert, and the copy gets hooks of its own."""
    def hook(mod, args, out):
        if mod is target:
            return fn(mod, args, out)

    target.register_forward_hook(hook)


def _before(target: nn.Module, fn, with_kwargs: bool = False) -> None:
    """A forward pre-hook that acts only for ``target`` itself (see ``_after``)."""
    if with_kwargs:
        def hook(mod, args, kwargs):
            if mod is target:
                return fn(mod, args, kwargs)
    else:
        def hook(mod, args):
            if mod is target:
                return fn(mod, args)

    target.register_forward_pre_hook(hook, with_kwargs=with_kwargs)


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

    _before(module, stash_mask, with_kwargs=True)
    _after(module.q_norm, stash_q)
    _after(module.k_norm, probabilities_from_k)


@dataclass
class WindowRecord:
    """One Swin window attention call, for the whole batch (float32)."""

    probs: torch.Tensor  # (B·nW, heads, N, N) softmax(content + bias + mask)
    content: torch.Tensor  # (B·nW, heads, N, N) q·kᵀ·scale
    bias: torch.Tensor  # (heads, N, N) relative position bias
    mask: torch.Tensor | None  # (nW, N, N) 0 / −100, None on unshifted blocks


def _recording_for(name: str) -> _Recorder | None:
    rec = _ACTIVE.get()
    return rec if rec is not None and rec.wants(name) and name not in rec.records else None


def _window_record(content: torch.Tensor, bias: torch.Tensor, mask: torch.Tensor | None) -> WindowRecord:
    """softmax(content + bias + mask) of one window attention call: content (B·nW, heads, N, N),
    bias (heads, N, N), mask (nW, N, N) or None, as Swin (v1 and v2) adds them."""
    logits = content + bias[None]
    if mask is not None:
        mask = mask.float().clone()
        b_, heads, n, _ = content.shape
        logits = (logits.view(-1, mask.shape[0], heads, n, n) + mask[None, :, None]).view(b_, heads, n, n)
    return WindowRecord(probs=logits.softmax(dim=-1), content=content, bias=bias.contiguous(), mask=mask)


def _swin_hooks(name: str, attn: WindowAttention) -> None:
    """The pre-hook stashes the mask; the hook on ``qkv`` splits q and k and records content,
    bias, mask and softmax."""

    def stash_mask(module, args, kwargs):
        rec = _recording_for(name)
        if rec is not None:
            rec.pending[name] = kwargs["mask"] if "mask" in kwargs else (args[1] if len(args) > 1 else None)

    def record(module, args, qkv):
        rec = _recording_for(name)
        if rec is None or name not in rec.pending:
            return
        mask = rec.pending.pop(name)
        b_, n, _ = qkv.shape
        heads = attn.num_heads
        q, k, _v = qkv.float().reshape(b_, n, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        content = (q * attn.scale) @ k.transpose(-2, -1)
        table = attn.relative_position_bias_table.float()
        bias = table[attn.relative_position_index.view(-1)].view(n, n, heads).permute(2, 0, 1)
        rec.records[name] = _window_record(content, bias, mask)

    _before(attn, stash_mask, with_kwargs=True)
    _after(attn.qkv, record)


def _swinv2_hooks(name: str, attn: WindowAttentionV2) -> None:
    """SwinV2's window attention: the cosine of q and k times the head's learned temperature
    τ = exp(min(logit_scale, log 100)), plus 16·sigmoid of the continuous position bias (its MLP
    on log-spaced offsets), plus the mask. timm computes ``qkv`` with ``F.linear`` and the
    separate q/v biases, so no hook on ``qkv`` fires: the pre-hook recomputes it from the input."""

    def record(module, args, kwargs):
        rec = _recording_for(name)
        if rec is None:
            return
        x = args[0]
        mask = kwargs["mask"] if "mask" in kwargs else (args[1] if len(args) > 1 else None)
        weight = attn.qkv.weight.float()
        qkv = F.linear(x.float(), weight, None if attn.qkv.bias is None else attn.qkv.bias.float())
        if attn.q_bias is not None:
            qkv = qkv + torch.cat((attn.q_bias, attn.k_bias, attn.v_bias)).float()
        b_, n, _ = x.shape
        heads = attn.num_heads
        q, k, _v = qkv.reshape(b_, n, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        tau = torch.clamp(attn.logit_scale.float(), max=math.log(1.0 / 0.01)).exp()  # (heads, 1, 1)
        content = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)) * tau
        table = attn.cpb_mlp(attn.relative_coords_table).float().view(-1, heads)
        bias = 16 * torch.sigmoid(table[attn.relative_position_index.view(-1)].view(n, n, heads).permute(2, 0, 1))
        rec.records[name] = _window_record(content, bias, mask)

    _before(attn, record, with_kwargs=True)


def _twins_lsa_hooks(name: str, attn: LocallyGroupedAttn) -> None:
    """LSA: timm reshapes ``qkv`` per window (zero-padded tokens included: it pads, it does not
    mask); the probabilities are softmax(q·kᵀ·scale) per window, keyed ``name``; the map size it
    ran on is kept under ``name + ".size"``."""

    def stash_size(module, args):
        rec = _recording_for(name)
        if rec is not None:
            rec.records[f"{name}.size"] = tuple(int(v) for v in args[1])

    def record(module, args, qkv):  # (B, wh, ww, ws, ws, 3C)
        rec = _recording_for(name)
        if rec is None:
            return
        q, k, _ = rearrange(qkv.float(), "b wh ww y x (three h d) -> three b (wh ww) h (y x) d",
                            three=3, h=attn.num_heads)
        rec.records[name] = ((q * attn.scale) @ k.transpose(-2, -1)).softmax(-1)

    _before(attn, stash_size)
    _after(attn.qkv, record)


def _twins_gsa_hooks(name: str, attn: GlobalSubSampleAttn) -> None:
    """GSA: queries from ``q``, keys from the sub-sampled ``kv``; softmax(q·kᵀ·scale)."""

    def stash_size(module, args):
        rec = _recording_for(name)
        if rec is not None:
            rec.records[f"{name}.size"] = tuple(int(v) for v in args[1])

    def stash_q(module, args, q):  # (B, N, C)
        rec = _recording_for(name)
        if rec is not None and name not in rec.pending:
            rec.pending[name] = rearrange(q.float(), "b n (h d) -> b h n d", h=attn.num_heads)

    def record(module, args, kv):  # (B, M, 2C): keys/values of the sub-sampled map
        rec = _recording_for(name)
        if rec is None or name not in rec.pending:
            return
        k, _ = rearrange(kv.float(), "b m (two h d) -> two b h m d", two=2, h=attn.num_heads)
        rec.records[name] = ((rec.pending.pop(name) * attn.scale) @ k.transpose(-2, -1)).softmax(-1)

    _before(attn, stash_size)
    _after(attn.q, stash_q)
    _after(attn.kv, record)


def _peg_hooks(name: str, peg: PosConv) -> None:
    """Twins' position generator: (its input, what it adds to each token)."""

    def record(module, args, out):
        rec = _recording_for(name)
        if rec is not None:
            x = args[0].float()
            rec.records[name] = (x, out.float() - x)

    _after(peg, record)


def _group_hooks(name: str, attn: GroupAttention | RPBAttention) -> None:
    """CrossFormer's SDA/LDA group attention: the pre-hook stashes the call's ``GroupLayout``,
    the hook on ``qkv`` recomputes content ((q·scale)·kᵀ, the official order), the DPB/RPB bias
    of that group size and the padding mask, as the layer does."""

    def stash_layout(module, args, kwargs):
        rec = _recording_for(name)
        if rec is not None:
            rec.pending[name] = kwargs["layout"] if "layout" in kwargs else args[1]

    def record(module, args, qkv):
        rec = _recording_for(name)
        if rec is None or name not in rec.pending:
            return
        layout = rec.pending.pop(name)
        heads, n, groups = attn.num_heads, layout.tokens_per_group, layout.num_groups
        q, k, _ = rearrange(qkv.float(), "b n (three h d) -> three b h n d", three=3, h=heads)
        content = (q * attn.scale) @ k.transpose(-2, -1)
        bias = attn.position_bias(layout.group_size)
        bias = content.new_zeros(heads, n, n) if bias is None else bias.detach().float()
        logits = content + bias.unsqueeze(0)
        mask = layout.attention_mask(qkv.device, torch.float32)
        if mask is not None:
            logits = (logits.view(-1, groups, heads, n, n) + mask[None, :, None]).view(-1, heads, n, n)
            mask = mask.contiguous()

        def per_group(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(-1, groups, heads, n, n)

        rec.records[name] = AttentionRecord(name=name, layout=layout, probs=per_group(logits.softmax(-1)),
                                            content=per_group(content), bias=bias, mask=mask)

    _before(attn, stash_layout, with_kwargs=True)
    _after(attn.qkv, record)


# (module type, how to hook it): the first that matches a module installs its hooks.
ADAPTERS: tuple[tuple[type, object], ...] = (
    (Attention, _attention_hooks),
    (WindowAttention, _swin_hooks),
    (WindowAttentionV2, _swinv2_hooks),
    (LocallyGroupedAttn, _twins_lsa_hooks),
    (GlobalSubSampleAttn, _twins_gsa_hooks),
    (PosConv, _peg_hooks),
    ((GroupAttention, RPBAttention), _group_hooks),
)


def _stage_hook(name: str):
    def record_shape(mod, args, out):
        rec = _ACTIVE.get()
        out = out[0] if isinstance(out, tuple) else out
        if rec is not None and isinstance(out, torch.Tensor):
            rec.stages.append((name, tuple(out.shape)))
            if name in rec.keep:
                rec.outputs[name] = out

    return record_shape


# The modules whose outputs make the "shape through the model" table of a timm ViT.
_VIT_STAGE_MODULES = ("patch_embed", "pos_drop", "norm", "fc_norm", "head_drop", "head")


def _stage_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) whose output shapes make the model's shape table, in model order."""
    found = []
    if hasattr(model, "patch_embeds") and hasattr(model, "pos_block"):  # Twins: per stage
        for s, (embed, blocks) in enumerate(zip(model.patch_embeds, model.blocks)):
            found.append((f"patch_embeds.{s}", embed))
            found.append((f"pos_block.{s}", model.pos_block[s]))
            found += [(f"blocks.{s}.{b}", blk) for b, blk in enumerate(blocks)]
        found.append(("norm", model.norm))
        if isinstance(getattr(model, "head", None), nn.Linear):
            found.append(("head", model.head))
        return found
    for name in _VIT_STAGE_MODULES:
        module = getattr(model, name, None)
        if isinstance(module, nn.Module) and not isinstance(module, nn.Identity):
            found.append((name, module))
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, (nn.ModuleList, nn.Sequential)):
        found += [(f"blocks.{i}", block) for i, block in enumerate(blocks)]
    return found


def install_hooks(model: nn.Module) -> nn.Module:
    """Install the capture hooks on ``model`` once (idempotent, thread-safe)."""
    with _INSTALL_LOCK:
        if getattr(model, "_explorer_hooks", None) == id(model):  # a deep copy carries the mark of another
            return model
        for name, module in model.named_modules():
            for kind, hook in ADAPTERS:
                if isinstance(module, kind):
                    hook(name, module)
                    break
        for name, module in _stage_modules(model):
            _after(module, _stage_hook(name))
        model._explorer_hooks = id(model)
    return model


@contextlib.contextmanager
def _recording(wanted: frozenset[str] | None = None, keep: frozenset[str] = frozenset()):
    rec = _Recorder(wanted=wanted, keep=keep)
    token = _ACTIVE.set(rec)
    try:
        yield rec
    finally:
        _ACTIVE.reset(token)


def _patch_grid(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    ph, pw = model.patch_embed.patch_size
    return x.shape[-2] // ph, x.shape[-1] // pw


def capture(model: nn.Module, x: torch.Tensor, wanted: frozenset[str] | None = None
            ) -> tuple[torch.Tensor, _Recorder]:
    """One no-grad forward pass of ``model`` with this request's recorder active: the model's
    output (float32) and what every adapter recorded (``records`` by module name, ``stages``), all
    on the model's device (``x`` is moved there)."""
    install_hooks(model)
    with torch.inference_mode(), _recording(wanted) as rec:
        out = model(x.to(device_of(model)))
    return out.float(), rec


def capture_attention(model: nn.Module, x: torch.Tensor, blocks: tuple[int, ...] | None = None,
                      keep: tuple[str, ...] = ()) -> Capture:
    """Run one no-grad forward pass of an eval-mode timm ViT and record its attention.

    Returns the logits, the softmax attention of every block — or only of ``blocks`` (indices,
    negative from the end), which saves their memory and time — (float32, rows sum to 1, N
    includes the prefix tokens), the shape of each stage's output and the outputs of the stages
    named in ``keep`` (e.g. ``"blocks.11"``, ``"norm"``); tensors stay on the model's device
    (``x`` is moved there), for the caller to bring to the CPU.
    """
    install_hooks(model)
    names = [n for n, m in model.named_modules() if isinstance(m, Attention)]
    if blocks is not None:
        names = [names[i] for i in blocks]
    with torch.inference_mode(), _recording(None if blocks is None else frozenset(names), frozenset(keep)) as rec:
        logits = model(x.to(device_of(model)))
    missing = [n for n in names if n not in rec.attentions]
    if missing:
        raise RuntimeError(f"attention was not captured for {missing[:3]}")
    return Capture(
        logits=logits.float(),
        attentions=[rec.attentions[n] for n in names],
        stages=list(rec.stages),
        num_prefix_tokens=int(getattr(model, "num_prefix_tokens", 0)),
        grid=_patch_grid(model, x),
        outputs=dict(rec.outputs),
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
