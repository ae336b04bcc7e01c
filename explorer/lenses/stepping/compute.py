"""Step through one attention head for one query token: every intermediate value (x, q, k,
v, q·kᵀ, scale, bias, mask, softmax, Σp·v, heads, projection, residual) recomputed by hand from
the module's own parameters, next to the values the model itself produced.

Families: timm ViT (``timm.layers.Attention`` blocks), timm Swin v1 and v2, the project's
CrossFormer (SDA/LDA groups) and timm Twins (LSA windows, GSA sub-sampled keys). One no-grad
forward (``record``) keeps what each block received and gave through hooks installed once per
model, which act only for the request whose ``ContextVar`` recorder is set (models are shared
between threads). A tab caches that ``Recording`` per image, so a new layer, head or query runs
no model: ``step_from`` does the arithmetic on the CPU in float64 and returns float32.
"""

from __future__ import annotations

import copy
import math
import threading
from contextvars import ContextVar
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from timm.layers import Attention as TimmAttention
from timm.layers import LayerScale
from timm.models.swin_transformer import SwinTransformerBlock
from timm.models.swin_transformer import WindowAttention
from timm.models.swin_transformer_v2 import SwinTransformerV2Block
from timm.models.swin_transformer_v2 import WindowAttention as WindowAttentionV2
from timm.models.twins import Block as TwinsBlock
from timm.models.twins import GlobalSubSampleAttn, LocallyGroupedAttn
from timm.models.vision_transformer import Block as VitBlock
from torch import nn

from explorer.core.capture import prefix_token_names
from explorer.core.devices import device_of
from explorer.lenses.swin.compute import token_slots, window_layout
from explorer.models import crossformer as cf
from explorer.models.geometry import pair

__all__ = ["HeadStep", "FAMILIES", "Recording", "step_families", "block_count", "stage_layers", "record",
           "record_image", "step_from", "step_through"]

FAMILIES = ("vit", "swin", "swinv2", "crossformer", "twins_lsa", "twins_gsa")


@dataclass
class HeadStep:
    """One head's attention for one query token, step by step (see the module docstring)."""

    family: str  # one of FAMILIES
    layer: int  # flat block index over the whole model (stages concatenated, in order)
    head: int
    query: int  # ViT: index in the full sequence; others: row·cols + col on the block's grid
    query_position: tuple[int, int] | None  # (row, col) on the block grid; None for a prefix token
    grid: tuple[int, int]  # the block's token grid (rows, cols)
    key_grid: tuple[int, int]  # grid key_positions refer to (== grid except Twins GSA)
    x: np.ndarray  # (C,) the query token as the attention module receives it (after norm1)
    q: np.ndarray  # (dh,)
    k: np.ndarray  # (N, dh) the N keys this query attends to
    v: np.ndarray  # (N, dh)
    dot: np.ndarray  # (N,) q·kᵀ before scaling (SwinV2: the cosine of q and k)
    scale: float  # the multiplier (SwinV2: the head's temperature τ)
    logits: np.ndarray  # (N,) dot·scale
    bias: np.ndarray  # (N,) relative position bias; zeros where the family has none
    bias_index: np.ndarray | None  # (N,) table row each key uses (Swin / CrossFormer); None otherwise
    bias_offset: np.ndarray | None  # (N, 2) (dy, dx) query minus key in window/group slot coordinates
    mask: np.ndarray  # (N,) what the model adds: 0, −100 (Swin shift), −1e6 (CrossFormer pad), −inf
    probs: np.ndarray  # (N,) softmax(logits + bias + mask)
    out: np.ndarray  # (dh,) Σ probs·v
    heads_out: np.ndarray  # (C,) every head's output for the query, concatenated in head order
    projected: np.ndarray  # (C,) after the output projection (= the attention module's output)
    block_input: np.ndarray  # (C,) the token entering the block
    residual: np.ndarray  # (C,) the token after the attention residual
    key_positions: np.ndarray  # (N, 2) (row, col) on key_grid; (−1, −1) for padding and prefix keys
    key_labels: tuple[str, ...]  # "CLS"/"DIST"/"REG1".., "(r, c)", or "pad"
    model_projected: np.ndarray  # (C,) the attention module's actual output for this token (hooked)
    model_residual: np.ndarray  # (C,) the block's actual value after the attention residual (hooked)
    notes: tuple[str, ...] = field(default_factory=tuple)  # what differs from the plain recipe

    @property
    def num_keys(self) -> int:
        return int(self.k.shape[0])


def step_families() -> tuple[str, ...]:
    return FAMILIES


# --------------------------------------------------------------------------- blocks

def _family(block: nn.Module) -> str | None:
    attn = getattr(block, "attn", None)
    if isinstance(block, VitBlock) and isinstance(attn, TimmAttention):
        return "vit"
    if isinstance(block, SwinTransformerBlock) and isinstance(attn, WindowAttention):
        return "swin"
    if isinstance(block, SwinTransformerV2Block) and isinstance(attn, WindowAttentionV2):
        return "swinv2"
    if isinstance(block, cf.CrossFormerBlock):
        return "crossformer"
    if isinstance(block, TwinsBlock) and isinstance(attn, LocallyGroupedAttn):
        return "twins_lsa"
    if isinstance(block, TwinsBlock) and isinstance(attn, GlobalSubSampleAttn):
        return "twins_gsa"
    return None


def _blocks(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """(name, block, family) in module order, which is execution order for these models."""
    found = []
    for name, module in model.named_modules():
        family = _family(module)
        if family is not None:
            found.append((name, module, family))
    return found


def block_count(model: nn.Module) -> int:
    """How many blocks of ``model`` can be stepped through (flat, over all stages)."""
    return len(_blocks(model))


# --------------------------------------------------------------------------- recording

@dataclass
class _Recorder:
    names: frozenset[str]  # the blocks to record
    values: dict[str, dict[str, object]] = field(default_factory=dict)  # block name -> what it saw

    def slot(self, name: str) -> dict[str, object] | None:
        return self.values.setdefault(name, {}) if name in self.names else None


@dataclass
class Recording:
    """What the recorded blocks received and gave in one forward of one image (block name ->
    input args, the attention's extra args, its output, the value after its residual)."""

    values: dict[str, dict[str, object]]
    image_hw: tuple[int, int]  # the preprocessed input's (H, W)


_ACTIVE: ContextVar[_Recorder | None] = ContextVar("explorer_step_recorder", default=None)
_INSTALL_LOCK = threading.Lock()


def _residual_module(block: nn.Module, family: str) -> nn.Module:
    # The first module that receives the token after the attention residual: norm2 in pre-norm
    # blocks; SwinV2 is post-norm (x + norm1(attn(x)), then x + norm2(mlp(x))), so its mlp.
    return block.mlp if family == "swinv2" else block.norm2


def _install(model: nn.Module) -> None:
    """Hooks on every steppable block, once per model. Each acts only for its own module (a
    deep copy carries the hooks bound to the original) and only when this request's recorder
    asks for that block; no hook is added or removed per request, so concurrent forwards in
    other threads are untouched."""
    with _INSTALL_LOCK:
        if getattr(model, "_explorer_step_hooks", None) == id(model):
            return
        for name, block, family in _blocks(model):
            def slot(target, mod, name=name):  # (each hook binds its own: defaults, not the loop's last)
                rec = _ACTIVE.get()
                return rec.slot(name) if rec is not None and mod is target else None

            def block_in(mod, args, kwargs, target=block, slot=slot):
                got = slot(target, mod)
                if got is not None and "block_args" not in got:
                    got["block_args"] = args
                    got["block_kwargs"] = kwargs

            def attn_in(mod, args, kwargs, target=block.attn, slot=slot):
                got = slot(target, mod)
                if got is not None and "attn_extra" not in got:
                    # args[0] (the windowed/normalised tokens) is recomputed by hand: not kept
                    got["attn_extra"] = args[1:]
                    got["attn_kwargs"] = kwargs

            def attn_out(mod, args, out, target=block.attn, slot=slot):
                got = slot(target, mod)
                if got is not None and "attn_out" not in got:
                    got["attn_out"] = out

            res_target = _residual_module(block, family)

            def residual_in(mod, args, target=res_target, slot=slot):
                got = slot(target, mod)
                if got is not None and "residual" not in got:
                    got["residual"] = args[0]

            block.register_forward_pre_hook(block_in, with_kwargs=True)
            block.attn.register_forward_pre_hook(attn_in, with_kwargs=True)
            block.attn.register_forward_hook(attn_out)
            res_target.register_forward_pre_hook(residual_in)
        model._explorer_step_hooks = id(model)


def _attn_arg(rec: dict, name: str):
    """The attention module's second argument (mask, layout), by keyword or by position."""
    extra = rec["attn_extra"]
    return rec["attn_kwargs"].get(name, extra[0] if extra else None)


# --------------------------------------------------------------------------- host arithmetic

def _host(t: torch.Tensor) -> torch.Tensor:
    """The one explicit move to the CPU, in float64 for the hand arithmetic."""
    return t.detach().cpu().to(torch.float64)


def _host_module(module: nn.Module) -> nn.Module:
    """A float64 CPU copy of a small parameterised piece (a norm, the GSA sub-sampling conv, a
    position-bias MLP), so it runs beside the hand arithmetic; the shared model is untouched.
    (Copies of hooked modules carry inert hooks: they check the module identity.)"""
    return copy.deepcopy(module).cpu().to(torch.float64).eval()


def _run(module: nn.Module, t: torch.Tensor) -> torch.Tensor:
    if isinstance(module, nn.Identity):
        return t
    with torch.inference_mode():
        return _host_module(module)(t)


def _linear(layer: nn.Linear, t: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """t @ Wᵀ + b by hand, with the layer's own parameters (``bias`` overrides the layer's)."""
    out = t @ _host(layer.weight).T
    b = layer.bias if bias is None else bias
    return out if b is None else out + _host(b)


def _layer_scale(module: nn.Module, t: torch.Tensor) -> torch.Tensor:
    if isinstance(module, nn.Identity):
        return t
    if isinstance(module, LayerScale):
        return t * _host(module.gamma)
    return _run(module, t)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.cpu().numpy().astype(np.float32)  # (already there: _host; the .cpu() says so)


def _label(r: int, c: int) -> str:
    return "pad" if r < 0 else f"({r}, {c})"


@dataclass
class _Keys:
    """The per-head attention of one query over its keys, all heads at once."""

    q: torch.Tensor  # (heads, dh)
    k: torch.Tensor  # (heads, N, dh)
    v: torch.Tensor  # (heads, N, dh)
    dot: torch.Tensor  # (heads, N)
    scale: torch.Tensor  # (heads,)
    bias: torch.Tensor  # (heads, N)
    mask: torch.Tensor  # (N,) or (heads, N)


def _attend(keys: _Keys):
    logits = keys.dot * keys.scale[:, None]
    mask = keys.mask if keys.mask.dim() == 2 else keys.mask.expand_as(logits)
    total = logits + keys.bias + mask
    probs = torch.softmax(total, dim=-1)
    out = (probs[:, :, None] * keys.v).sum(1)  # (heads, dh)
    return logits, mask, probs, out


def _split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """(..., heads·dh) -> (heads, ..., dh)."""
    return t.reshape(*t.shape[:-1], heads, -1).movedim(-2, 0)


# --------------------------------------------------------------------------- families

def _check_query(query: int, count: int, what: str) -> None:
    if not 0 <= query < count:
        raise ValueError(f"query {query} is out of range: this block has {count} {what} (0..{count - 1})")


def _token_map(rec: dict, query: int) -> tuple[torch.Tensor, int, int, int, int]:
    """A stage block's input as (L, C) tokens of its (H, W) map, and the query's (row, col) on
    it, checked: (tokens, H, W, row, col)."""
    tokens = _host(rec["block_args"][0])[0]  # (L, C)
    H, W = (int(v) for v in rec["block_args"][1])
    _check_query(query, H * W, "tokens")
    return tokens, H, W, *divmod(query, W)


def _vit(model, block, rec, head, query):
    attn = block.attn
    block_x = _host(rec["block_args"][0])[0]  # (N, C)
    n = block_x.shape[0]
    _check_query(query, n, "tokens")
    xs = _run(block.norm1, block_x)  # (N, C) what the attention module receives
    heads = attn.num_heads
    qkv = _linear(attn.qkv, xs).reshape(n, 3, heads, attn.head_dim).permute(1, 2, 0, 3)  # (3, h, N, dh)
    q, k, v = qkv.unbind(0)
    q, k = _run(attn.q_norm, q), _run(attn.k_norm, k)  # per-head norms (Identity unless qk_norm)
    q = q[:, query]
    mask = torch.zeros(n, dtype=torch.float64)
    user_mask = _attn_arg(rec, "attn_mask")
    if user_mask is not None:  # SDPA convention: bool True = may attend, float = additive
        m = user_mask.detach()
        m = torch.where(m, 0.0, -math.inf).cpu().double() if m.dtype == torch.bool else m.cpu().double()
        mask = torch.broadcast_to(m, (1, heads, n, n))[0, :, query]
    keys = _Keys(q=q, k=k, v=v, dot=(k @ q[:, :, None])[..., 0],
                 scale=torch.full((heads,), float(attn.scale), dtype=torch.float64),
                 bias=torch.zeros(heads, n, dtype=torch.float64), mask=mask)
    logits, mask, probs, out = _attend(keys)
    heads_out = out.reshape(-1)
    pre_proj = _run(attn.norm, heads_out)
    if getattr(attn, "gate", None) is not None:  # gated attention: σ(gate(x)) before proj
        pre_proj = pre_proj * torch.sigmoid(_linear(attn.gate, xs[query]))
    projected = _linear(attn.proj, pre_proj)
    residual = block_x[query] + _layer_scale(block.ls1, projected)  # drop_path: identity in eval

    npt = int(getattr(model, "num_prefix_tokens", 0))
    ph, pw = pair(model.patch_embed.patch_size)
    rows, cols = (n - npt, 1)
    img = rec.get("image_hw")
    if img is not None:
        gr, gc = math.ceil(img[0] / ph), math.ceil(img[1] / pw)
        if gr * gc == n - npt:
            rows, cols = gr, gc
    names = prefix_token_names(model)
    positions = np.full((n, 2), -1, dtype=np.int64)
    labels = []
    for t in range(n):
        if t < npt:
            labels.append(names[t])
        else:
            positions[t] = ((t - npt) // cols, (t - npt) % cols)
            labels.append(_label(*positions[t]))
    model_projected = _host(rec["attn_out"])[0, query]
    model_residual = _host(rec["residual"])[0, query]
    return dict(
        query_position=None if query < npt else tuple(int(v) for v in positions[query]),
        grid=(rows, cols), key_grid=(rows, cols), x=xs[query], keys=keys, logits=logits, mask=mask,
        probs=probs, out=out, heads_out=heads_out, projected=projected, block_input=block_x[query],
        residual=residual, key_positions=positions, key_labels=tuple(labels), bias_index=None,
        bias_offset=None, model_projected=model_projected, model_residual=model_residual, notes=())


def _window_offsets(slot: int, window: tuple[int, int], n: int) -> np.ndarray:
    """(dy, dx) of query slot ``slot`` minus every slot of a row-major window/group."""
    wh, ww = window
    slots = np.arange(n)
    return np.stack([slot // ww - slots // ww, slot % ww - slots % ww], axis=1).astype(np.int64)


def _swin(block, rec, head, query, v2: bool):
    attn = block.attn
    block_x = _host(rec["block_args"][0])[0]  # (H, W, C)
    H, W, C = block_x.shape
    _check_query(query, H * W, "tokens")
    row, col = divmod(query, W)
    window, shift = pair(block.window_size), pair(block.shift_size)
    layout = window_layout(H, W, window, shift)  # (nW, N, 2) unshifted (row, col), −1 padding
    w, i = (int(v) for v in token_slots(layout, H, W)[row, col])
    members = layout[w]  # (N, 2)
    n = members.shape[0]
    # v1 is pre-norm (attention sees norm1(x)); v2 is post-norm (attention sees x itself).
    normed = block_x if v2 else _run(block.norm1, block_x)
    real = members[:, 0] >= 0
    xs = torch.zeros(n, C, dtype=torch.float64)  # timm pads the rolled map with zeros
    xs[real] = normed[members[real, 0], members[real, 1]]
    heads = attn.num_heads
    if v2:
        bias_qkv = None
        if attn.q_bias is not None:
            bias_qkv = torch.cat((attn.q_bias, attn.k_bias, attn.v_bias))
            if attn.qkv_bias_separate and attn.qkv.bias is not None:
                bias_qkv = bias_qkv + attn.qkv.bias
        qkv = _linear(attn.qkv, xs, bias_qkv)
    else:
        qkv = _linear(attn.qkv, xs)
    q, k, v = _split_heads(qkv.reshape(n, 3, -1).transpose(0, 1), heads).unbind(1)  # (h, N, dh)
    q = q[:, i]
    index = attn.relative_position_index[i].detach().cpu().long()  # (N,) table rows for slot i
    if v2:  # cosine attention × τ, bias 16·σ(CPB MLP on log-spaced offsets)
        dot = (F.normalize(k, dim=-1) @ F.normalize(q, dim=-1)[:, :, None])[..., 0]
        scale = torch.clamp(_host(attn.logit_scale).reshape(-1), max=math.log(1.0 / 0.01)).exp()
        table = _run(attn.cpb_mlp, _host(attn.relative_coords_table)).reshape(-1, heads)
        bias = 16 * torch.sigmoid(table[index].T)
    else:
        dot = (k @ q[:, :, None])[..., 0]
        scale = torch.full((heads,), float(attn.scale), dtype=torch.float64)
        bias = _host(attn.relative_position_bias_table)[index].T  # (h, N)
    mask_all = _attn_arg(rec, "mask")
    mask = torch.zeros(n, dtype=torch.float64) if mask_all is None else _host(mask_all)[w, i]
    keys = _Keys(q=q, k=k, v=v, dot=dot, scale=scale, bias=bias, mask=mask)
    logits, mask, probs, out = _attend(keys)
    heads_out = out.reshape(-1)
    projected = _linear(attn.proj, heads_out)
    # The block: x + drop_path1(attn) (v1) or x + drop_path1(norm1(attn)) (v2), drop_path identity in eval.
    residual = block_x[row, col] + (_run(block.norm1, projected) if v2 else projected)
    model_projected = _host(rec["attn_out"])[w, i]  # batch 1: window w of the (nW, N, C) output
    model_residual = _host(rec["residual"])[0, query]  # (B, H·W, C) entering norm2 / the mlp
    labels = tuple(_label(int(r), int(c)) for r, c in members)
    notes = ("v2: x is the block input (post-norm block); dot is the cosine, scale is τ, "
             "bias is 16·sigmoid(CPB), residual adds norm1(projected)",) if v2 else ()
    return dict(
        query_position=(row, col), grid=(H, W), key_grid=(H, W), x=xs[i], keys=keys, logits=logits,
        mask=mask, probs=probs, out=out, heads_out=heads_out, projected=projected,
        block_input=block_x[row, col], residual=residual, key_positions=members.astype(np.int64),
        key_labels=labels, bias_index=index.cpu().numpy().astype(np.int64),
        bias_offset=_window_offsets(i, window, n), model_projected=model_projected,
        model_residual=model_residual, notes=notes + (
            f"window {w} of the {'shifted ' if any(shift) else ''}map, slot {i}; "
            "bias_offset is in window-slot coordinates (after the cyclic shift)",))


def _crossformer(block, rec, head, query):
    attn = block.attn
    block_x, H, W, row, col = _token_map(rec, query)
    C = block_x.shape[-1]
    layout = _attn_arg(rec, "layout")
    index = layout.token_index()  # (groups, g²) flat r·W + c, −1 padding: the model's own order
    where = (index == query).nonzero()
    g, i = int(where[0, 0]), int(where[0, 1])
    flat = index[g]
    n = flat.shape[0]
    real = flat >= 0
    normed = _run(block.norm1, block_x)
    xs = torch.zeros(n, C, dtype=torch.float64)  # the block zero-pads after norm1
    xs[real] = normed[flat[real]]
    heads = attn.num_heads
    q, k, v = _split_heads(_linear(attn.qkv, xs).reshape(n, 3, -1).transpose(0, 1), heads).unbind(1)
    q = q[:, i]
    gs = layout.group_size
    rows_index = cf.relative_position_index(gs)[i]  # (N,) row of the table at this group size
    with torch.inference_mode():
        table = attn.position_bias_table(gs)
    bias = torch.zeros(heads, n, dtype=torch.float64) if table is None else _host(table)[rows_index].T
    bias_index = rows_index
    if isinstance(attn, cf.RPBAttention) and gs < attn.group_size:
        # A smaller runtime group reads a sub-table: give the row of the stored table itself.
        bias_index = cf._subtable_rows(gs, attn.group_size)[rows_index]
    mask_all = layout.attention_mask(torch.device("cpu"), torch.float64)
    mask = torch.zeros(n, dtype=torch.float64) if mask_all is None else mask_all[g, i]
    keys = _Keys(q=q, k=k, v=v, dot=(k @ q[:, :, None])[..., 0],
                 scale=torch.full((heads,), float(attn.scale), dtype=torch.float64), bias=bias, mask=mask)
    logits, mask, probs, out = _attend(keys)
    heads_out = out.reshape(-1)
    projected = _linear(attn.proj, heads_out)
    residual = block_x[query] + projected  # shortcut + drop_path(x), identity in eval
    positions = np.stack([np.where(real, flat // W, -1), np.where(real, flat % W, -1)], axis=1).astype(np.int64)
    kind = "DPB MLP evaluated at this group size" if isinstance(attn, cf.Attention) else "stored RPB table"
    return dict(
        query_position=(row, col), grid=(H, W), key_grid=(H, W), x=xs[i], keys=keys, logits=logits,
        mask=mask, probs=probs, out=out, heads_out=heads_out, projected=projected,
        block_input=block_x[query], residual=residual, key_positions=positions,
        key_labels=tuple(_label(int(r), int(c)) for r, c in positions),
        bias_index=None if table is None else bias_index.cpu().numpy().astype(np.int64),
        bias_offset=None if table is None else _window_offsets(i, (gs, gs), n),
        model_projected=_host(rec["attn_out"])[g, i], model_residual=_host(rec["residual"])[0, query],
        notes=(f"{layout.kind} group {g} (g={gs}, interval {layout.interval}), slot {i}; bias from the {kind}; "
               "bias_offset is in group-slot coordinates (LDA: image offset = offset × interval)",))


def _twins(block, rec, head, query, family):
    attn = block.attn
    block_x, H, W, row, col = _token_map(rec, query)
    C = block_x.shape[-1]
    normed = _run(block.norm1, block_x)
    heads = attn.num_heads
    scale = torch.full((heads,), float(attn.scale), dtype=torch.float64)
    if family == "twins_lsa":
        ws = attn.ws
        wr, wc = row // ws, col // ws
        slot = (row % ws) * ws + (col % ws)
        rr, cc = np.meshgrid(np.arange(ws) + wr * ws, np.arange(ws) + wc * ws, indexing="ij")
        rr, cc = rr.reshape(-1), cc.reshape(-1)
        real = (rr < H) & (cc < W)
        positions = np.stack([np.where(real, rr, -1), np.where(real, cc, -1)], axis=1).astype(np.int64)
        n = positions.shape[0]
        xs = torch.zeros(n, C, dtype=torch.float64)  # timm zero-pads, and does not mask, these keys
        xs[torch.from_numpy(real)] = normed[torch.from_numpy(rr[real] * W + cc[real])]
        q, k, v = _split_heads(_linear(attn.qkv, xs).reshape(n, 3, -1).transpose(0, 1), heads).unbind(1)
        q = q[:, slot]
        x_query, key_grid = xs[slot], (H, W)
        labels = tuple(_label(int(r), int(c)) for r, c in positions)
        notes = (f"window ({wr}, {wc}) of {ws}×{ws}, slot {slot}; padded keys are zeros and not masked",)
    else:
        x_query = normed[query]
        q = _split_heads(_linear(attn.q, x_query), heads)  # (h, dh)
        if attn.sr is not None:  # keys/values from the sub-sampled map: conv (kernel = stride = sr), LN
            with torch.inference_mode():
                grid = normed.T.reshape(1, C, H, W)
                sub = _host_module(attn.sr)(grid)
                key_grid = (int(sub.shape[-2]), int(sub.shape[-1]))
                kv_in = _host_module(attn.norm)(sub.reshape(C, -1).T)
        else:
            kv_in, key_grid = normed, (H, W)
        m = kv_in.shape[0]
        k, v = _split_heads(_linear(attn.kv, kv_in).reshape(m, 2, -1).transpose(0, 1), heads).unbind(1)
        cells = np.arange(m)
        positions = np.stack([cells // key_grid[1], cells % key_grid[1]], axis=1).astype(np.int64)
        labels = tuple(_label(int(r), int(c)) for r, c in positions)
        notes = (f"keys are the {key_grid[0]}×{key_grid[1]} cells of the sub-sampled map (sr={attn.sr_ratio}); "
                 "key_positions are on that grid",)
        n = m
    keys = _Keys(q=q, k=k, v=v, dot=(k @ q[:, :, None])[..., 0], scale=scale,
                 bias=torch.zeros(heads, n, dtype=torch.float64), mask=torch.zeros(n, dtype=torch.float64))
    logits, mask, probs, out = _attend(keys)
    heads_out = out.reshape(-1)
    projected = _linear(attn.proj, heads_out)
    residual = block_x[query] + projected
    return dict(
        query_position=(row, col), grid=(H, W), key_grid=key_grid, x=x_query, keys=keys, logits=logits,
        mask=mask, probs=probs, out=out, heads_out=heads_out, projected=projected,
        block_input=block_x[query], residual=residual, key_positions=positions, key_labels=labels,
        bias_index=None, bias_offset=None, model_projected=_host(rec["attn_out"])[0, query],
        model_residual=_host(rec["residual"])[0, query], notes=notes)


# --------------------------------------------------------------------------- entry points

def stage_layers(model: nn.Module) -> list[list[int]]:
    """The flat block indices of each stage, in order: blocks grouped by the module that holds
    them (``layers.2.blocks`` in Swin, ``blocks.1`` in Twins; one group for a ViT)."""
    stages: dict[str, list[int]] = {}
    for index, (name, _, _) in enumerate(_blocks(model)):
        stages.setdefault(name.rpartition(".")[0], []).append(index)
    return list(stages.values())


def _check_input(model: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Module, str]]:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one preprocessed image of shape (1, 3, H, W), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    if model.training:
        raise ValueError("step_through needs model.eval(): dropout and drop-path would change the values")
    blocks = _blocks(model)
    if not blocks:
        raise ValueError(f"{type(model).__name__} has no block this step-through understands "
                         f"(families: {', '.join(FAMILIES)})")
    return blocks


def _check_pick(blocks, layer, head, query) -> tuple[int, int, int]:
    for arg, value in (("layer", layer), ("head", head), ("query", query)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{arg} must be an integer, got {value!r}")
    layer, head, query = int(layer), int(head), int(query)
    if not 0 <= layer < len(blocks):
        raise ValueError(f"layer {layer} is out of range: this model has {len(blocks)} blocks (0..{len(blocks) - 1})")
    heads = int(blocks[layer][1].attn.num_heads)
    if not 0 <= head < heads:
        raise ValueError(f"head {head} is out of range: block {layer} has {heads} heads (0..{heads - 1})")
    if query < 0:
        raise ValueError(f"query {query} is out of range: token indices start at 0")
    return layer, head, query


def record(model: nn.Module, x: torch.Tensor, layers: list[int] | None = None) -> Recording:
    """One no-grad forward of the preprocessed batch ``x`` (1, 3, H, W) keeping what blocks
    ``layers`` (flat indices; None: every block) received and gave."""
    blocks = _check_input(model, x)
    chosen = range(len(blocks)) if layers is None else layers
    names = frozenset(blocks[i][0] for i in chosen)
    _install(model)
    rec = _Recorder(names=names)
    token = _ACTIVE.set(rec)
    try:
        with torch.inference_mode():
            model(x.to(device_of(model)))
    finally:
        _ACTIVE.reset(token)
    for name in names:
        missing = {"block_args", "attn_extra", "attn_out", "residual"} - set(rec.values.get(name, {}))
        if missing:
            raise RuntimeError(f"block {name!r} did not run in the forward pass (missing {sorted(missing)})")
    return Recording(values=rec.values, image_hw=(int(x.shape[-2]), int(x.shape[-1])))


def record_image(loaded, image, geometry: str, multiple: tuple[int, int] | None = None) -> Recording:
    """``record`` of every block on ``image`` (a ``LoadedImage``) preprocessed as the lens does
    for ``loaded`` (a ``LoadedModel``; ``multiple``: what the lens's native geometry cuts the
    size to, by default the patch size)."""
    from explorer.core.preprocess import preprocess

    pre = preprocess(image.image, loaded.data_config, geometry, multiple or loaded.patch_size)
    return record(loaded.model, pre.tensor)


def step_from(model: nn.Module, recording: Recording, layer: int, head: int, query: int) -> HeadStep:
    """Every step of head ``head``'s attention for token ``query`` in block ``layer`` (flat
    index over all stages) from a recorded forward; no model runs. ``query`` is the token index
    in the full sequence for a ViT (prefix tokens first), row·cols + col on the block's grid for
    every other family."""
    blocks = _blocks(model)
    layer, head, query = _check_pick(blocks, layer, head, query)
    name, block, family = blocks[layer]
    if name not in recording.values:
        raise ValueError(f"block {layer} ({name}) was not recorded")
    rec = {**recording.values[name], "image_hw": recording.image_hw}
    with torch.inference_mode():
        if family == "vit":
            got = _vit(model, block, rec, head, query)
        elif family in ("swin", "swinv2"):
            got = _swin(block, rec, head, query, v2=family == "swinv2")
        elif family == "crossformer":
            got = _crossformer(block, rec, head, query)
        else:
            got = _twins(block, rec, head, query, family)
    keys: _Keys = got["keys"]
    return HeadStep(
        family=family, layer=layer, head=head, query=query, query_position=got["query_position"],
        grid=tuple(got["grid"]), key_grid=tuple(got["key_grid"]), x=_np(got["x"]),
        q=_np(keys.q[head]), k=_np(keys.k[head]), v=_np(keys.v[head]), dot=_np(keys.dot[head]),
        scale=float(keys.scale[head]), logits=_np(got["logits"][head]), bias=_np(keys.bias[head]),
        bias_index=got["bias_index"], bias_offset=got["bias_offset"], mask=_np(got["mask"][head]),
        probs=_np(got["probs"][head]), out=_np(got["out"][head]), heads_out=_np(got["heads_out"]),
        projected=_np(got["projected"]), block_input=_np(got["block_input"]), residual=_np(got["residual"]),
        key_positions=np.asarray(got["key_positions"], dtype=np.int64), key_labels=tuple(got["key_labels"]),
        model_projected=_np(got["model_projected"]), model_residual=_np(got["model_residual"]),
        notes=tuple(got["notes"]))


def step_through(model: nn.Module, x: torch.Tensor, layer: int, head: int, query: int) -> HeadStep:
    """``step_from`` on a forward that records block ``layer`` only (arguments checked first)."""
    blocks = _check_input(model, x)
    layer, head, query = _check_pick(blocks, layer, head, query)
    return step_from(model, record(model, x, [layer]), layer, head, query)
