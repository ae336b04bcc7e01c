"""AttnLRP (Achtibat et al., ICML 2024) for timm's ``VisionTransformer``, with lxt's own rules.

lxt offers two forms. Its efficient one (``lxt.efficient.monkey_patch``) rewrites the forward of
torch.nn's classes for the whole process — every other model this server holds would change,
GAE's gradients included — and knows torchvision's ViT only. Its explicit one is a set of
autograd functions whose backward carries relevance instead of gradient; this module applies
those to the model's own modules, in the order of timm's forward, on a private copy. The rules
are lxt's recipe for vision transformers (``lxt.efficient.models.vit_torch``, the paper's A.2.3):

- LayerNorm: ε-rule on x − mean, identity rule on 1/σ (``layer_norm``);
- the MLP's activation: identity rule; linear layers and residual sums: ε-LRP
  (``linear_epsilon``, ``add2``); LayerScale and constant factors: identity (``mul2``);
- attention: CP-LRP, relevance through the values only with the attention probabilities held
  fixed (``multi_head_attention_cp``) — lxt's choice for ViTs, where the softmax's relevance is
  shattered and needs extra rules for little gain.

The map: each patch token's relevance at the patch embedding, summed over its channels (what the
position embedding adds takes its own share at that sum). It is signed: negative relevance
speaks against the class.

Installed with ``pip install --no-deps lxt``: lxt's metadata asks for transformers, bitsandbytes
and open_clip for its language-model patches; the explicit rules used here need torch only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.layers import Attention, LayerScale, Mlp
from timm.layers.pos_embed import resample_abs_pos_embed
from timm.models.deit import VisionTransformerDistilled
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from explorer.core.devices import device_of


def available() -> bool:
    try:
        import lxt.explicit.special  # noqa: F401
    except ImportError:
        return False
    return True


def unsupported(model: nn.Module) -> str | None:
    """Why AttnLRP cannot read ``model`` (a text key), or None when it can: timm's plain ViT
    blocks (standard attention without q/k norms or gates, an MLP with an elementwise activation),
    LayerNorm everywhere, classifying from the CLS token."""
    if not available():
        return "ex_lrp_missing"
    if not isinstance(model, VisionTransformer):
        return "ex_lrp_other"
    norms = (model.norm_pre, model.norm, model.fc_norm)
    heads = (model.head, getattr(model, "head_dist", model.head))
    if (model.global_pool != "token" or model.attn_pool is not None or model.cls_token is None or model.pos_embed is None
            or not all(isinstance(n, (nn.LayerNorm, nn.Identity)) for n in norms)
            or not all(isinstance(h, nn.Linear) for h in heads)  # a headless model has no logit to explain
            or (isinstance(model, VisionTransformerDistilled) and not isinstance(model.fc_norm, nn.Identity))):
        return "ex_lrp_other"  # (timm's distilled head skips fc_norm)
    for block in model.blocks:
        attention, mlp = getattr(block, "attn", None), getattr(block, "mlp", None)
        if (type(block) is not Block or type(attention) is not Attention or type(mlp) is not Mlp
                or attention.gate is not None or attention.attn_dim != block.norm1.normalized_shape[0]
                or not all(isinstance(m, nn.Identity) for m in (attention.q_norm, attention.k_norm, attention.norm))
                or not isinstance(mlp.norm, nn.Identity)
                or not all(isinstance(n, nn.LayerNorm) for n in (block.norm1, block.norm2))
                or not all(isinstance(s, (LayerScale, nn.Identity)) for s in (block.ls1, block.ls2))):
            return "ex_lrp_other"
    return None


@dataclass
class Relevance:
    """Where the target's logit went, by AttnLRP: per token (..., C), before summing channels
    (on the model's device)."""

    logits: torch.Tensor  # (K,) what this forward computed: the model's own logits
    patches: torch.Tensor  # (N, C) at the patch embedding's output
    prefix: torch.Tensor  # (P, C) the CLS (distillation, register) tokens
    position: torch.Tensor  # (N + P or N, C) the position embedding

    @property
    def total(self) -> float:
        """All relevance that reached the inputs (= the logit, less what the biases absorbed)."""
        return float(self.patches.sum() + self.prefix.sum() + self.position.sum())


def _norm(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    import lxt.explicit.functional as lf

    return lf.layer_norm(x, module.weight, module.bias, module.eps) if isinstance(module, nn.LayerNorm) else x


def _linear(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    import lxt.explicit.functional as lf

    return lf.linear_epsilon(x, module.weight, module.bias)


def _scale(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    import lxt.explicit.functional as lf

    return lf.mul2(x, module.gamma.detach()) if isinstance(module, LayerScale) else x  # a constant: identity


def _attention(attention: Attention, x: torch.Tensor) -> torch.Tensor:
    import lxt.explicit.functional as lf
    import lxt.explicit.special as ls

    width = attention.attn_dim
    weight, bias = attention.qkv.weight, attention.qkv.bias
    part = (lambda i: None) if bias is None else (lambda i: bias[i * width:(i + 1) * width])
    out, _ = ls.multi_head_attention_cp(  # q, k: fixed (no relevance); v and the projection: ε-LRP
        x, x, x, True, attention.num_heads, attention.head_dim, weight[:width], part(0), weight[width:2 * width],
        part(1), lambda v: lf.linear_epsilon(v, weight[2 * width:], part(2)), lambda y: _linear(attention.proj, y),
        need_weights=False)
    return out


def _mlp(mlp: Mlp, x: torch.Tensor) -> torch.Tensor:
    import lxt.explicit.rules as lr

    return _linear(mlp.fc2, lr.identity(mlp.act, _linear(mlp.fc1, x)))


def _block(block: Block, x: torch.Tensor) -> torch.Tensor:
    import lxt.explicit.functional as lf

    x = lf.add2(x, _scale(block.ls1, _attention(block.attn, _norm(block.norm1, x))))
    return lf.add2(x, _scale(block.ls2, _mlp(block.mlp, _norm(block.norm2, x))))


def relevance(model: VisionTransformer, x: torch.Tensor, target: int) -> Relevance:
    """One forward of ``model`` (eval mode) through lxt's rules and one backward of relevance
    from the target's logit, for the single image ``x`` (1, 3, H, W). Parameters get no ``.grad``."""
    import lxt.explicit.functional as lf

    x = x.to(device_of(model))
    with torch.enable_grad():
        patches = model.patch_embed(x).detach().requires_grad_(True)  # (1, N, C), or (1, h, w, C)
        tokens = patches.reshape(1, -1, patches.shape[-1])
        extra = (getattr(model, "dist_token", None), model.reg_token)  # in timm's order: CLS, distillation, registers
        prefix = [t.expand(1, -1, -1) for t in (model.cls_token, *extra) if t is not None]
        prefix = torch.cat(prefix, dim=1).detach().requires_grad_(True)
        position = model.pos_embed
        if model.dynamic_img_size:
            position = resample_abs_pos_embed(position, new_size=patches.shape[1:3], old_size=model.patch_embed.grid_size,
                                              num_prefix_tokens=0 if model.no_embed_class else model.num_prefix_tokens)
        position = position.detach().requires_grad_(True)
        if model.no_embed_class:  # DeiT III: positions for the patches only, prefix tokens added after
            h = torch.cat([prefix, lf.add2(tokens, position)], dim=1)
        else:
            h = lf.add2(torch.cat([prefix, tokens], dim=1), position)
        h = _norm(model.norm_pre, h)
        for block in model.blocks:
            h = _block(block, h)
        h = _norm(model.fc_norm, _norm(model.norm, h))
        logits = _linear(model.head, h[:, 0])
        if isinstance(model, VisionTransformerDistilled):  # the mean of its two heads, split by ε-LRP
            logits = lf.mul2(lf.add2(logits, _linear(model.head_dist, h[:, 1])), 0.5)
        score = logits[0, target]
        grads = torch.autograd.grad(score, [patches, prefix, position], grad_outputs=score.detach())
    r_patches, r_prefix, r_position = (g.detach().reshape(-1, g.shape[-1]) for g in grads)
    return Relevance(logits=logits[0].detach(), patches=r_patches, prefix=r_prefix, position=r_position)


def attnlrp_map(model: VisionTransformer, x: torch.Tensor, target: int, grid: tuple[int, int]) -> torch.Tensor:
    """The (h, w) map: each patch's relevance summed over its channels."""
    return relevance(model, x, target).patches.sum(-1).reshape(grid)
