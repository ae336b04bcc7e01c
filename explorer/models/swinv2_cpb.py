"""SwinV2's continuous position bias (Liu et al., CVPR 2022), as timm computes it, and its exact
conversion to a fixed table at the window the model is built with, the way CrossFormer's DPB
converts to an RPB table.

SwinV2 feeds each relative offset (Δh, Δw), log-spaced — sign(Δ)·log2(1 + 8|Δ|/(M−1))/log2(8) —
to a two-layer MLP (2 → 512 → heads) and adds 16·σ(MLP) to the cosine-attention logits. At a
fixed window the MLP sees the same (2M−1)² offsets at every forward, so its outputs form a table
indexed exactly like Swin v1's ``relative_position_bias_table``: the converted model reads that
table and computes the same logits without the MLP.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from timm.models.swin_transformer_v2 import WindowAttention
from torch import nn

CPB_SCALE = 16.0  # 16·sigmoid: the bias lies in (0, 16)


def cpb_table(attn: WindowAttention) -> torch.Tensor:
    """((2Mh−1)(2Mw−1), heads): 16·σ(MLP(log-spaced offsets)), rows in the order of the offsets
    table (Δh major), indexed by ``attn.relative_position_index`` like a v1 table."""
    raw = attn.cpb_mlp(attn.relative_coords_table).view(-1, attn.num_heads)
    return CPB_SCALE * torch.sigmoid(raw)


class TableWindowAttention(WindowAttention):
    """SwinV2 window attention whose bias is read from a fixed table (``cpb_table`` at its
    window) instead of evaluating the CPB MLP; everything else is timm's forward."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B_, N, C = x.shape
        bias = None if self.q_bias is None else torch.cat((self.q_bias, self.k_bias, self.v_bias))
        if bias is not None and self.qkv_bias_separate:
            qkv = self.qkv(x) + bias
        else:
            qkv = F.linear(x, weight=self.qkv.weight, bias=bias)
        q, k, v = qkv.reshape(B_, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = attn * torch.clamp(self.logit_scale, max=math.log(1.0 / 0.01)).exp()
        table = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attn = attn + table.view(N, N, -1).permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            num_win = mask.shape[0]
            attn = (attn.view(-1, num_win, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)).view(
                -1, self.num_heads, N, N)
        attn = self.attn_drop(self.softmax(attn))
        x = (attn @ v).transpose(1, 2).reshape(B_, N, C)
        return self.proj_drop(self.proj(x))


def _converted(attn: WindowAttention) -> TableWindowAttention:
    new = copy.deepcopy(attn)
    new.__class__ = TableWindowAttention
    with torch.no_grad():
        table = cpb_table(attn).detach().clone()
    new.relative_position_bias_table = nn.Parameter(table)
    del new.cpb_mlp  # the table replaces it
    return new


def cpb_to_table(model: nn.Module) -> nn.Module:
    """A copy of a timm SwinTransformerV2 whose every window attention reads its CPB as a fixed
    table (the model itself is left as it is)."""
    converted = copy.deepcopy(model)
    for name, module in list(converted.named_modules()):
        if type(module) is WindowAttention:
            parent = converted.get_submodule(name.rsplit(".", 1)[0])
            setattr(parent, name.rsplit(".", 1)[1], _converted(module))
    return converted.eval()
