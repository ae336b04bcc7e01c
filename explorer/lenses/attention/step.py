"""Step through one head of a timm ViT for one query token, with this image's numbers.

x (the token after the block's LayerNorm) -> q, k, v of the head -> q·kᵀ -> × scale (+ mask)
-> softmax -> Σ p·v -> all heads concatenated -> output projection -> + residual. Every block's
input comes from one captured forward (``capture_attention(keep=...)``, cached by the tab, so a
new layer, head or query runs no model); the steps are
recomputed from the block's own weights, and the block's own modules (fused attention as the
model runs it) give the reference each step must reach: ``projected`` equals the attention
module's output for the token, ``residual`` the block's value after its attention residual, and
running the block on the captured input equals the captured block output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explorer.core.capture import capture_attention, prefix_token_names

# the formula of each step, in the order the view walks them (text keys: step_<name>)
STEPS = ("x", "qkv", "dot", "scale", "softmax", "out", "concat", "proj", "residual")


@dataclass
class HeadStep:
    """Every number of one head's attention for one query token (float32 numpy)."""

    layer: int
    head: int
    query: int  # token index in the full sequence (prefix tokens first)
    key_labels: tuple[str, ...]  # per key: "CLS", "REG1", … or "(row, col)" of the patch grid
    grid: tuple[int, int]
    num_prefix_tokens: int
    x: np.ndarray  # (C,) the query token after norm1: the attention's input
    q: np.ndarray  # (dh,)
    k: np.ndarray  # (N, dh)
    v: np.ndarray  # (N, dh)
    dot: np.ndarray  # (N,) q·k for every key
    scale: float  # dh^-1/2
    logits: np.ndarray  # (N,) q·kᵀ·scale
    bias: np.ndarray  # (N,) relative position bias added (none in a ViT: zeros)
    mask: np.ndarray  # (N,) additive mask (none here: zeros)
    probs: np.ndarray  # (N,) softmax(logits + bias + mask)
    out: np.ndarray  # (dh,) Σ probs·v
    heads_out: np.ndarray  # (C,) every head's output for the query, concatenated
    projected: np.ndarray  # (C,) after the output projection
    block_input: np.ndarray  # (C,) the token entering the block
    residual: np.ndarray  # (C,) block_input + layer_scale(projected)
    model_projected: np.ndarray  # (C,) the attention module's own output for the token
    model_residual: np.ndarray  # (C,) the block's own value after its attention residual
    model_block_output: np.ndarray  # (C,) the captured block output for the token
    rerun_block_output: np.ndarray  # (C,) the block run on the captured input

    @property
    def num_keys(self) -> int:
        return self.k.shape[0]

    def top_keys(self, n: int = 8) -> list[tuple[int, float]]:
        """The ``n`` keys the query attends to most: (key index, probability), largest first."""
        order = np.argsort(-self.probs, kind="stable")[:n]
        return [(int(i), float(self.probs[i])) for i in order]


@dataclass
class BlockInputs:
    """What every block received (and gave) in one captured forward: enough to step through any
    layer, head and query without running the model again (the tab caches it per image)."""

    inputs: list[torch.Tensor]  # per block (1, N, C) float32 on the model's device
    outputs: list[torch.Tensor]  # per block (1, N, C)
    grid: tuple[int, int]
    num_prefix_tokens: int


def block_inputs(model: nn.Module, x: torch.Tensor) -> BlockInputs:
    """One captured forward keeping the input and output of every block."""
    depth = len(model.blocks)
    names = ("pos_drop", *(f"blocks.{i}" for i in range(depth)))
    cap = capture_attention(model, x, blocks=(), keep=names)
    # what timm applies between the position embedding and the first block
    first = model.norm_pre(model.patch_drop(cap.outputs["pos_drop"]))
    outputs = [cap.outputs[f"blocks.{i}"].float() for i in range(depth)]
    return BlockInputs([first.float(), *outputs[:-1]], outputs, cap.grid, cap.num_prefix_tokens)


def _check(name: str, value: int, limit: int) -> None:
    if not 0 <= value < limit:
        raise ValueError(f"{name} {value} is out of range: this model has {limit} (0…{limit - 1})")


def step_through(model: nn.Module, x: torch.Tensor, layer: int, head: int, query: int) -> HeadStep:
    """One head's attention for one query token of an eval-mode timm ViT on input ``x``."""
    _check("layer", layer, len(model.blocks))
    _check("head", head, model.blocks[layer].attn.num_heads)
    return step_at(model, block_inputs(model, x), layer, head, query)


def step_at(model: nn.Module, captured: BlockInputs, layer: int, head: int, query: int) -> HeadStep:
    """The steps from a forward's captured block inputs: only block ``layer``'s own layers run."""
    _check("layer", layer, len(model.blocks))
    _check("head", head, model.blocks[layer].attn.num_heads)
    block_in, block_out = captured.inputs[layer], captured.outputs[layer]
    _check("query token", query, block_in.shape[1])
    block = model.blocks[layer]
    attn = block.attn
    with torch.inference_mode():
        xn = block.norm1(block_in)  # (1, N, C)
        heads, dh = attn.num_heads, attn.head_dim
        qkv = F.linear(xn, attn.qkv.weight, attn.qkv.bias).reshape(1, -1, 3, heads, dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (1, heads, N, dh)
        q, k = attn.q_norm(q), attn.k_norm(k)
        q_all = q[0, :, query]  # (heads, dh): the query in every head
        dots = torch.einsum("hd,hnd->hn", q_all, k[0])  # (heads, N)
        logits = dots * attn.scale
        probs = logits.softmax(-1)
        outs = torch.einsum("hn,hnd->hd", probs, v[0])  # (heads, dh)
        concat = attn.norm(outs.reshape(1, 1, -1))
        if getattr(attn, "gate", None) is not None:  # gated attention: sigmoid(gate(x)) per channel
            concat = concat * attn.gate(xn[:, query:query + 1]).sigmoid()
        projected = attn.proj(concat)[0, 0]
        residual = block_in[0, query] + block.ls1(projected)
        model_projected = attn(xn)[0, query]  # the module itself: fused SDPA when timm uses it
        model_residual = block_in[0, query] + block.ls1(model_projected)
        rerun = block(block_in)[0, query]

    def np32(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().cpu().numpy()

    n = k.shape[2]
    grid, prefix = captured.grid, captured.num_prefix_tokens
    labels = tuple(prefix_token_names(model)) + tuple(
        f"({i // grid[1]}, {i % grid[1]})" for i in range(n - prefix))
    return HeadStep(
        layer=layer, head=head, query=query, key_labels=labels, grid=grid, num_prefix_tokens=prefix,
        x=np32(xn[0, query]), q=np32(q_all[head]), k=np32(k[0, head]), v=np32(v[0, head]),
        dot=np32(dots[head]), scale=float(attn.scale), logits=np32(logits[head]),
        bias=np.zeros(n, np.float32), mask=np.zeros(n, np.float32), probs=np32(probs[head]),
        out=np32(outs[head]), heads_out=np32(outs.reshape(-1)), projected=np32(projected),
        block_input=np32(block_in[0, query]), residual=np32(residual), model_projected=np32(model_projected),
        model_residual=np32(model_residual), model_block_output=np32(block_out[0, query]),
        rerun_block_output=np32(rerun))


def inputs_for(loaded, image, geometry: str) -> BlockInputs:
    """``block_inputs`` on a loaded model and an image, preprocessed as the lens does."""
    from explorer.core.preprocess import preprocess

    if not is_steppable(loaded.model):
        raise ValueError(f"{loaded.shown.key}: stepping through a head needs a timm ViT (blocks with timm Attention)")
    pre = preprocess(image.image, loaded.data_config, geometry, loaded.patch_size)
    return block_inputs(loaded.model, pre.tensor)


def is_steppable(model: nn.Module) -> bool:
    """A timm ViT whose blocks the steps above describe (pre-norm Block with timm Attention)."""
    from timm.layers import Attention

    blocks = getattr(model, "blocks", None)
    return isinstance(blocks, (nn.Sequential, nn.ModuleList)) and len(blocks) > 0 and all(
        isinstance(getattr(b, "attn", None), Attention) and hasattr(b, "norm1") and hasattr(b, "ls1")
        for b in blocks)


__all__ = ["BlockInputs", "HeadStep", "STEPS", "block_inputs", "inputs_for", "step_at", "step_through",
           "is_steppable"]
