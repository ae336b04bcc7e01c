"""Step through one head of a Swin block (timm ``SwinTransformerBlock``, v1) for one token.

x (the token after norm1) -> the cyclic shift and window partition put it in one window -> q,
k, v of the head for the window's tokens -> q·kᵀ × scale -> + the relative position bias (the
table row each key uses, and its offset) -> + the shift mask (−100 between regions) -> softmax
-> Σ p·v -> heads concatenated -> projection -> + residual. The block input comes from the
model's own modules run in order (patch embedding, stages, blocks: the same path as its forward,
with no hook on a shared model); the block's own fused attention, ``_attn`` and forward are the
references the steps must reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from timm.models.swin_transformer import SwinTransformerBlock, window_partition
from torch import nn


@dataclass
class SwinHeadStep:
    """One head's attention for one token of a Swin block (float32 numpy; N keys of its window)."""

    layer: int  # flat block index over the stages
    stage: int
    block: int  # inside the stage
    head: int
    query: int  # row·cols + col on the block's token grid
    query_position: tuple[int, int]
    grid: tuple[int, int]
    window: int  # the query's window (row-major over the shifted, padded map)
    key_positions: np.ndarray  # (N, 2) (row, col) of each key on the grid; (−1, −1) for padding
    x: np.ndarray  # (C,)
    q: np.ndarray  # (dh,)
    k: np.ndarray  # (N, dh)
    v: np.ndarray  # (N, dh)
    dot: np.ndarray  # (N,)
    scale: float
    logits: np.ndarray  # (N,) dot·scale
    bias: np.ndarray  # (N,) relative position bias
    bias_index: np.ndarray  # (N,) the table row each key uses
    bias_offset: np.ndarray  # (N, 2) (dy, dx) query minus key inside the window
    mask: np.ndarray  # (N,) 0 or −100 (shifted blocks), zeros otherwise
    probs: np.ndarray  # (N,)
    out: np.ndarray  # (dh,)
    heads_out: np.ndarray  # (C,)
    projected: np.ndarray  # (C,)
    block_input: np.ndarray  # (C,)
    residual: np.ndarray  # (C,)
    model_projected: np.ndarray  # (C,) the window attention's own output for the token
    model_residual: np.ndarray  # (C,) block input + the block's own ``_attn`` at the token
    model_block_output: np.ndarray  # (C,) the block's output (forward) at the token
    stepped_block_output: np.ndarray  # (C,) residual + MLP(norm2(residual)), from the stepped residual

    @property
    def num_keys(self) -> int:
        return self.k.shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        """What ``export swin --step`` writes."""
        return {"step_x": self.x, "step_q": self.q, "step_k": self.k, "step_v": self.v,
                "step_logits": self.logits, "step_bias": self.bias, "step_mask": self.mask,
                "step_probs": self.probs, "step_out": self.out, "step_bias_index": self.bias_index,
                "step_bias_offset": self.bias_offset, "step_key_positions": self.key_positions}


def swin_blocks(model: nn.Module) -> list[tuple[int, int, SwinTransformerBlock]]:
    """(stage, block in stage, block) of a timm Swin v1, in order."""
    return [(s, b, block) for s, stage in enumerate(model.layers) for b, block in enumerate(stage.blocks)
            if isinstance(block, SwinTransformerBlock)]


def _check(name: str, value: int, limit: int) -> None:
    if not 0 <= value < limit:
        raise ValueError(f"{name} {value} is out of range: this model has {limit} (0…{limit - 1})")


def _block_input(model: nn.Module, x: torch.Tensor, stage: int, block: int) -> torch.Tensor:
    """The input of ``model.layers[stage].blocks[block]`` (1, H, W, C): the model's own modules in
    the order its forward runs them."""
    h = model.patch_embed(x)
    for s, layer in enumerate(model.layers):
        h = layer.downsample(h)
        for b, blk in enumerate(layer.blocks):
            if (s, b) == (stage, block):
                return h
            h = blk(h)
    raise AssertionError("unreachable")


def step_through(model: nn.Module, x: torch.Tensor, layer: int, head: int, query: int) -> SwinHeadStep:
    blocks = swin_blocks(model)
    _check("layer", layer, len(blocks))
    stage, index, blk = blocks[layer]
    attn = blk.attn
    _check("head", head, attn.num_heads)
    with torch.inference_mode():
        x = x.to(next(model.parameters()).device)
        block_in = _block_input(model, x, stage, index).float()
        _, H, W, C = block_in.shape
        _check("query token", query, H * W)
        r, c = divmod(query, W)
        (wh, ww), (sh, sw) = blk.window_size, blk.shift_size
        xn = blk.norm1(block_in)
        # the block's own geometry: shift, then pad, then partition (timm's _attn)
        shifted = torch.roll(xn, shifts=(-sh, -sw), dims=(1, 2)) if (sh or sw) else xn
        pad_h, pad_w = (wh - H % wh) % wh, (ww - W % ww) % ww
        shifted = torch.nn.functional.pad(shifted, (0, 0, 0, pad_w, 0, pad_h))
        Hp, Wp = shifted.shape[1:3]
        windows = window_partition(shifted, (wh, ww)).view(-1, wh * ww, C)
        mask = blk.get_attn_mask(shifted) if getattr(blk, "dynamic_mask", False) else blk.attn_mask
        sr, sc = (r - sh) % H, (c - sw) % W  # the query's place on the shifted map
        window = (sr // wh) * (Wp // ww) + sc // ww
        qi = (sr % wh) * ww + sc % ww
        # every key's place: window-local (i, j) -> shifted map -> the grid (padding: −1)
        local = np.stack(np.divmod(np.arange(wh * ww), ww), axis=1)
        pr, pc = (sr // wh) * wh + local[:, 0], (sc // ww) * ww + local[:, 1]
        padding = (pr >= H) | (pc >= W)
        positions = np.stack([(pr + sh) % H, (pc + sw) % W], axis=1)
        positions[padding] = -1

        tokens = windows[window]  # (N, C)
        heads = attn.num_heads
        qkv = attn.qkv(tokens).reshape(wh * ww, 3, heads, -1).permute(1, 2, 0, 3)  # (3, heads, N, dh)
        q, k, v = qkv.unbind(0)
        dots = torch.einsum("hd,hnd->hn", q[:, qi], k)
        logits = dots * attn.scale
        bias = attn._get_rel_pos_bias()[0, :, qi]  # (heads, N)
        shift_mask = mask[window, qi].float() if mask is not None else torch.zeros_like(bias[0])
        probs = (logits + bias + shift_mask).softmax(-1)
        outs = torch.einsum("hn,hnd->hd", probs, v)
        projected = attn.proj(outs.reshape(1, -1))[0]
        residual = block_in[0, r, c] + projected  # drop path is the identity in eval
        model_projected = attn(windows, mask=mask)[window, qi]
        model_residual = block_in[0, r, c] + blk._attn(xn)[0, r, c]
        model_out = blk(block_in)[0, r, c]
        stepped_out = residual + blk.mlp(blk.norm2(residual))
        index_row = attn.relative_position_index[qi].long()

    def np32(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().cpu().numpy()

    return SwinHeadStep(
        layer=layer, stage=stage, block=index, head=head, query=query, query_position=(r, c), grid=(H, W),
        window=int(window), key_positions=positions.astype(np.int64), x=np32(xn[0, r, c]), q=np32(q[head, qi]),
        k=np32(k[head]), v=np32(v[head]), dot=np32(dots[head]), scale=float(attn.scale), logits=np32(logits[head]),
        bias=np32(bias[head]), bias_index=np32(index_row).astype(np.int64),
        bias_offset=(local[qi] - local).astype(np.int64), mask=np32(shift_mask), probs=np32(probs[head]),
        out=np32(outs[head]), heads_out=np32(outs.reshape(-1)), projected=np32(projected),
        block_input=np32(block_in[0, r, c]), residual=np32(residual), model_projected=np32(model_projected),
        model_residual=np32(model_residual), model_block_output=np32(model_out),
        stepped_block_output=np32(stepped_out))
