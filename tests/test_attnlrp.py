"""AttnLRP on timm ViTs: its forward is the model's own, relevance is conserved where no bias
takes a share, it equals lxt's explicit rules (its autograd functions whose backward carries
relevance) and lxt's efficient rule functions, the explanation pass's shared forward gives the same
map, and the models it cannot read are said so. Random-init models only."""

from __future__ import annotations

import copy
import importlib.util
import pathlib

import pytest
import timm
import torch
from torch import nn

from explorer.lenses.explain import attnlrp, compute

ARCHITECTURES = [  # (timm name, keyword arguments): CLS; CLS + distillation; CLS + registers; DeiT III's layer scale
    ("vit_tiny_patch16_224", dict(img_size=32, patch_size=8, depth=3)),
    ("deit_tiny_distilled_patch16_224", dict(img_size=32, patch_size=8, depth=2)),
    ("vit_small_patch14_reg4_dinov2", dict(img_size=28, depth=2)),
    ("deit3_small_patch16_224", dict(img_size=32, patch_size=8, depth=2, init_values=0.5)),
]


def perturbed(name: str, **kwargs) -> nn.Module:
    """Weights far from timm's init (zero biases, unit norms), so every rule is exercised."""
    torch.manual_seed(0)
    model = timm.create_model(name, num_classes=5, **kwargs).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model


@pytest.mark.parametrize("name, kwargs", ARCHITECTURES)
def test_the_relevance_forward_is_the_models_own_and_leaves_it_without_grads(name, kwargs):
    model = perturbed(name, **kwargs)
    assert attnlrp.unsupported(model) is None
    x = torch.randn(1, 3, kwargs["img_size"], kwargs["img_size"])
    with torch.no_grad():
        want = model(x)[0]
    got = attnlrp.relevance(compute.private_copy(model), x, 1)
    torch.testing.assert_close(got.logits, want, atol=1e-5, rtol=1e-5)  # unfused attention: float rounding only
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in model.modules())  # nothing left on the model


@pytest.mark.parametrize("name, kwargs", ARCHITECTURES)
def test_relevance_is_conserved_when_no_bias_takes_a_share(name, kwargs):
    """Every rule is conservative but for the share biases absorb: with them at zero, what reaches
    the patches, the prefix tokens and the position embedding adds up to the explained logit."""
    model = perturbed(name, **kwargs)
    with torch.no_grad():
        for param_name, p in model.named_parameters():
            if param_name.endswith("bias"):
                p.zero_()
    x = torch.randn(1, 3, kwargs["img_size"], kwargs["img_size"])
    got = attnlrp.relevance(model, x, 3)
    assert abs(got.total - float(got.logits[3])) <= 1e-4 * max(1.0, abs(float(got.logits[3])))
    with torch.no_grad():  # biases back: now they take a share, and the sum is no longer the logit
        for param_name, p in model.named_parameters():
            if param_name.endswith("bias"):
                p.add_(torch.randn_like(p))
    got = attnlrp.relevance(model, x, 3)
    assert abs(got.total - float(got.logits[3])) > 1e-3


def test_blocks_switched_off_by_their_layer_scale_leave_the_patches_nothing():
    """With LayerScale γ = 0 no block adds anything: the class comes from the CLS token and its
    position alone, so every patch gets exactly zero relevance."""
    model = perturbed("deit3_small_patch16_224", img_size=32, patch_size=8, depth=2, init_values=0.5)
    with torch.no_grad():
        for block in model.blocks:
            block.ls1.gamma.zero_()
            block.ls2.gamma.zero_()
    got = attnlrp.relevance(model, torch.randn(1, 3, 32, 32), 0)
    assert torch.count_nonzero(got.patches) == 0 and got.prefix[0].abs().sum() > 0


def explicit_attnlrp(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """The same rules with lxt's explicit functions, whose backward carries relevance, applied to
    the model's own modules in timm's forward order: ε-LRP on linear layers and sums, the identity
    on LayerNorm's 1/σ and the GELU, CP-LRP in attention. Returns the (N,) patch map."""
    import lxt.explicit.functional as lf
    import lxt.explicit.rules as lr
    import lxt.explicit.special as ls

    def norm(module, h):
        return lf.layer_norm(h, module.weight, module.bias, module.eps) if isinstance(module, nn.LayerNorm) else h

    def linear(module, h):
        return lf.linear_epsilon(h, module.weight, module.bias)

    def scale(module, h):
        return lf.mul2(h, module.gamma.detach()) if isinstance(module, timm.layers.LayerScale) else h

    def attention(a, h):
        width, weight, bias = a.attn_dim, a.qkv.weight, a.qkv.bias
        part = (lambda i: None) if bias is None else (lambda i: bias[i * width:(i + 1) * width])
        out, _ = ls.multi_head_attention_cp(
            h, h, h, True, a.num_heads, a.head_dim, weight[:width], part(0), weight[width:2 * width], part(1),
            lambda v: lf.linear_epsilon(v, weight[2 * width:], part(2)), lambda y: linear(a.proj, y), need_weights=False)
        return out

    with torch.enable_grad():
        patches = model.patch_embed(x).detach().requires_grad_(True)
        tokens = patches.reshape(1, -1, patches.shape[-1])
        extra = (getattr(model, "dist_token", None), model.reg_token)
        prefix = torch.cat([t.expand(1, -1, -1) for t in (model.cls_token, *extra) if t is not None], dim=1).detach()
        position = model.pos_embed.detach()
        if model.no_embed_class:
            h = torch.cat([prefix, lf.add2(tokens, position)], dim=1)
        else:
            h = lf.add2(torch.cat([prefix, tokens], dim=1), position)
        h = norm(model.norm_pre, h)
        for block in model.blocks:
            h = lf.add2(h, scale(block.ls1, attention(block.attn, norm(block.norm1, h))))
            h = lf.add2(h, scale(block.ls2, linear(block.mlp.fc2, lr.identity(block.mlp.act,
                                                                               linear(block.mlp.fc1, norm(block.norm2, h))))))
        h = norm(model.fc_norm, norm(model.norm, h))
        logits = linear(model.head, h[:, 0])
        if isinstance(model, timm.models.deit.VisionTransformerDistilled):
            logits = lf.mul2(lf.add2(logits, linear(model.head_dist, h[:, 1])), 0.5)
        score = logits[0, target]
        (relevance,) = torch.autograd.grad(score, [patches], grad_outputs=score.detach())
    return relevance.reshape(-1, relevance.shape[-1]).sum(-1)


def lxt_efficient_rules():
    """lxt's efficient rules module, loaded from its file: ``import lxt.efficient`` would import
    transformers (for its language models), which this project does not install."""
    import lxt

    path = pathlib.Path(lxt.__file__).parent / "efficient" / "rules.py"
    spec = importlib.util.spec_from_file_location("lxt_efficient_rules", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Detached(nn.Module):
    def forward(self, x):
        return x.detach()


def efficient_attnlrp(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """The same rules in lxt's efficient form (its ``vit_torch`` recipe, written on timm's layers):
    LayerNorm's σ detached, the activation through ``identity_rule_implicit``, q and k detached
    (CP-LRP), plain autograd; relevance = input × gradient at the patch embedding."""
    rules = lxt_efficient_rules()
    model = copy.deepcopy(model)

    def layer_norm(norm):  # lxt.efficient.patches.layer_norm_forward
        def forward(h):
            mean = h.mean(-1, keepdim=True)
            std = (((h - mean) ** 2).mean(-1, keepdim=True) + norm.eps).sqrt()
            return (h - mean) / rules.stop_gradient(std) * norm.weight + norm.bias
        return forward

    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            module.forward = layer_norm(module)
        if isinstance(module, timm.layers.Mlp):
            act = module.act
            module.act = type("Identity", (nn.Module,), {"forward": lambda self, h: rules.identity_rule_implicit(act, h)})()
        if isinstance(module, timm.layers.Attention):
            module.fused_attn, module.q_norm, module.k_norm = False, Detached(), Detached()
    saved = []
    model.patch_embed.register_forward_hook(lambda m, i, out: saved.append(out.detach().requires_grad_(True)) or saved[-1])
    score = model(x)[0, target]
    score.backward()
    return (saved[0] * saved[0].grad).sum(-1)[0]


@pytest.mark.parametrize("name, kwargs", ARCHITECTURES)
def test_our_rules_equal_lxts_explicit_and_efficient_rules(name, kwargs, monkeypatch):
    """Exactly, once lxt's stabiliser ε (added to every denominator of the explicit rules) is made
    negligible in float64; with its default 1e-6 the maps differ by ~1e-4 of their maximum."""
    pytest.importorskip("lxt.explicit.special")
    import lxt.explicit.functional as lf
    import lxt.explicit.rules as lr

    stabilize = lf._stabilize
    for module in (lf, lr):
        monkeypatch.setattr(module, "_stabilize", lambda t, epsilon=0, inplace=False: stabilize(t, 1e-15, inplace))
    model = perturbed(name, **kwargs).double()
    x = torch.randn(1, 3, kwargs["img_size"], kwargs["img_size"], dtype=torch.float64)
    ours = attnlrp.relevance(compute.private_copy(model), x, 2).patches.sum(-1)
    explicit = explicit_attnlrp(model, x, 2).detach()
    efficient = efficient_attnlrp(model, x, 2).detach()
    torch.testing.assert_close(ours, explicit, atol=1e-7 * float(explicit.abs().max()), rtol=0)
    torch.testing.assert_close(ours, efficient, atol=1e-7 * float(efficient.abs().max()), rtol=0)


@pytest.mark.parametrize("name, kwargs", ARCHITECTURES)
def test_the_shared_pass_gives_attnlrp_the_same_map_and_gae_its_true_gradients(name, kwargs):
    """The explanation pass runs one forward for GAE, Grad-CAM and AttnLRP: its AttnLRP map is the
    one of a forward of its own, and with the rules hooked its gradients are the plain model's."""
    model = perturbed(name, **kwargs)
    x = torch.randn(1, 3, kwargs["img_size"], kwargs["img_size"])
    grid = tuple(model.patch_embed.grid_size)
    shared = compute.explained_pass(compute.private_copy(model), x.clone(), 4)
    alone = attnlrp.relevance(compute.private_copy(model), x, 4).patch_map(grid)
    torch.testing.assert_close(torch.from_numpy(shared.attnlrp), alone, atol=1e-6 * float(alone.abs().max()), rtol=0)
    plain = compute.private_copy(model)
    saved = []
    for block in plain.blocks:
        block.attn.fused_attn = False
        block.attn.attn_drop.register_forward_hook(lambda m, i, out: saved.append(out))
    with torch.enable_grad():
        logits = plain(x)
        gradients = torch.autograd.grad(logits[0, 4], saved)
    for got, want in zip(shared.gradients, gradients, strict=True):
        torch.testing.assert_close(got, want[0], atol=1e-6, rtol=1e-5)


def test_models_it_cannot_read_are_named_and_the_lens_leaves_attnlrp_out():
    qk_norm = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=1, num_classes=3,
                                qk_norm=True).eval()
    assert attnlrp.unsupported(qk_norm) == "ex_lrp_other"
    headless = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=1, num_classes=0).eval()
    assert attnlrp.unsupported(headless) == "ex_lrp_other"
    assert "attnlrp" not in compute.methods_of(qk_norm) and compute.missing_notes(qk_norm) == ("ex_lrp_other",)
    plain = perturbed("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=1)
    assert "attnlrp" in compute.methods_of(plain) and compute.missing_notes(plain) == ()
    result = compute.explained_pass(compute.private_copy(qk_norm), torch.randn(1, 3, 32, 32), 0)
    assert result.attnlrp is None and "attnlrp" not in compute.maps_of(result, 1, (4, 4))
