"""AttnLRP (Achtibat et al., ICML 2024) for timm's ``VisionTransformer``: lxt's rules for vision
transformers in lxt's own efficient form, sharing the explanation pass's forward.

lxt's efficient form is gradient × input through a graph whose backward is changed at three
kinds of points (``lxt.efficient.models.vit_torch``, the paper's A.2.3); everything else — linear
layers, residual sums, LayerScale — is plain autograd, which *is* the ε-LRP (ε → 0) on them:

- LayerNorm: the gradient does not flow through σ (identity rule on 1/σ; ``layer_norm_forward``);
- the MLP's activation: gradient f(x)/x, the identity rule (``identity_rule_implicit``);
- attention: no gradient through the softmax to q and k (CP-LRP, ``stop_gradient``): relevance
  goes through the values with the probabilities held fixed — lxt's choice for ViTs.

Why not lxt's code itself at run time: ``lxt.efficient.monkey_patch`` rewrites torch.nn's classes
for the whole process (every other model this server holds would change, GAE's gradients
included) and knows torchvision's ViT only; its explicit functions compute their own forward and
so need a second forward beside GAE's. Here each rule is a forward hook on a *private copy's*
modules whose output is the module's own value, with a backward that is either the true gradient
(GAE, Grad-CAM) or the rule (AttnLRP), switched between the two backwards of one forward. The
tests hold this to lxt's explicit rules and to lxt's efficient rule functions (float64, ≤ 1e-7).

The map: each patch token's relevance at the patch embedding, summed over its channels (what the
position embedding adds takes its own share at that sum). It is signed: negative relevance
speaks against the class.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from timm.layers import Attention, LayerScale, Mlp
from timm.models.deit import VisionTransformerDistilled
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from explorer.core.devices import device_of


def unsupported(model: nn.Module) -> str | None:
    """Why AttnLRP cannot read ``model`` (a text key), or None when it can: timm's plain ViT
    blocks (standard attention without q/k norms or gates, an MLP with an elementwise activation),
    LayerNorm everywhere, classifying from the CLS token."""
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

    def patch_map(self, grid: tuple[int, int]) -> torch.Tensor:
        """The (h, w) map: each patch's relevance summed over its channels."""
        return self.patches.sum(-1).reshape(grid)


class _RuleOrGradient(torch.autograd.Function):
    """The exact value forward; backward, the gradient to the exact branch, or — while the
    recorder propagates relevance — to the rule's branch (same value, changed derivative)."""

    @staticmethod
    def forward(ctx, exact: torch.Tensor, rule: torch.Tensor, recorder: "Recorder") -> torch.Tensor:
        ctx.recorder = recorder
        return exact.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return (None, grad, None) if ctx.recorder.propagating else (grad, None, None)


def _norm_rule(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """LayerNorm with σ a constant (lxt's ``layer_norm_forward``)."""
    centred = x - x.mean(-1, keepdim=True)
    y = centred / (centred.pow(2).mean(-1, keepdim=True) + norm.eps).sqrt().detach()
    if norm.weight is not None:
        y = y * norm.weight
    return y if norm.bias is None else y + norm.bias


def _identity_rule(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The identity rule on y = f(x) elementwise: gradient f(x)/x (lxt's ``identity_rule_implicit``,
    with its 1e-10 in the denominator)."""
    return x * (y / (x + 1e-10)).detach()


class Recorder:
    """What one hooked forward keeps for AttnLRP: the embedded tokens (the first block's input,
    before ``norm_pre``) and the patch tokens; ``propagating`` switches the rules' backward."""

    def __init__(self) -> None:
        self.propagating = False
        self.patches: torch.Tensor | None = None  # the patch embedding's output
        self.embedded: torch.Tensor | None = None  # prefix tokens + patches + positions

    def relevance(self, model: VisionTransformer, logits: torch.Tensor, target: int) -> Relevance:
        """The relevance backward of the target's logit (batch element 0) through the hooked
        forward that gave ``logits``: gradient × input at the embedded tokens, split into the
        patches', the prefix tokens' and the position embedding's shares. Frees the graph."""
        self.propagating = True
        try:
            (gradient,) = torch.autograd.grad(logits[0, target], [self.embedded])
        finally:
            self.propagating = False
        embedded, gradient = self.embedded[0].detach(), gradient[0]
        patches = self.patches[0].detach().reshape(-1, embedded.shape[-1])
        p = embedded.shape[0] - patches.shape[0]
        if model.no_embed_class:  # DeiT III: positions for the patches only, prefix tokens added after
            prefix, position = embedded[:p], embedded[p:] - patches
            r_position = position * gradient[p:]
        else:
            extra = (getattr(model, "dist_token", None), model.reg_token)  # in timm's order: CLS, distillation, registers
            prefix = torch.cat([t[0] for t in (model.cls_token, *extra) if t is not None]).detach()
            r_position = (embedded - torch.cat([prefix, patches])) * gradient
        return Relevance(logits=logits[0].detach(), patches=patches * gradient[p:], prefix=prefix * gradient[:p],
                         position=r_position)


@contextmanager
def rules(model: VisionTransformer) -> Iterator[Recorder]:
    """lxt's ViT rules hooked onto ``model`` — a private copy (``compute.private_copy``): hooks on
    a shared model would reach every request — for the forwards run inside; removed after. Its
    attention is switched to timm's unfused path for good: the CP rule holds the probabilities,
    which the fused path never makes."""
    recorder = Recorder()

    def switched(rule):
        return lambda module, inputs, output: _RuleOrGradient.apply(output, rule(module, inputs[0], output), recorder)

    def keep(name):
        return lambda module, inputs, output: setattr(recorder, name, output)

    handles = [model.patch_embed.register_forward_hook(keep("patches")),
               model.pos_drop.register_forward_hook(keep("embedded"))]  # the last step of timm's _pos_embed
    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            handles.append(module.register_forward_hook(switched(lambda m, x, y: _norm_rule(m, x))))
        elif isinstance(module, Mlp):
            handles.append(module.act.register_forward_hook(switched(lambda m, x, y: _identity_rule(x, y))))
        elif isinstance(module, Attention):  # after softmax: what attn_drop returns is what multiplies v
            module.fused_attn = False
            handles.append(module.attn_drop.register_forward_hook(switched(lambda m, x, y: y.detach())))
    try:
        yield recorder
    finally:
        for handle in handles:
            handle.remove()


def relevance(model: VisionTransformer, x: torch.Tensor, target: int) -> Relevance:
    """One forward of ``model`` (eval mode; a private copy, see ``rules``) with the rules hooked
    and one relevance backward from the target's logit, for the single image ``x`` (1, 3, H, W).
    Parameters get no ``.grad``."""
    with torch.enable_grad(), rules(model) as recorder:
        logits = model(x.to(device_of(model)).detach().requires_grad_(True))
        return recorder.relevance(model, logits, target)
