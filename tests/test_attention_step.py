"""Stepping through one head (lenses/attention/step.py): each step's numbers by hand on a tiny
ViT with identity projections, and the stepped result equal to the block's own attention output,
its residual and its output (fused attention on) on ViTs with CLS, distillation and register
tokens; the export writes the step's arrays."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from timm.models.vision_transformer import VisionTransformer

from explorer.core.capture import capture_attention
from explorer.lenses.attention.step import is_steppable, step_through


def _random(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


@pytest.mark.parametrize("name, kwargs", [
    ("vit_tiny_patch16_224", dict(img_size=64, reg_tokens=2)),
    ("deit_tiny_distilled_patch16_224", dict(img_size=64)),
    ("vit_small_patch16_224", dict(img_size=(48, 80), depth=3, qk_norm=True, init_values=0.1)),
])
def test_the_stepped_head_reaches_the_blocks_own_output(name, kwargs):
    model = _random(timm.create_model(name, pretrained=False, num_classes=5, **kwargs))
    assert is_steppable(model) and all(b.attn.fused_attn for b in model.blocks)
    x = torch.randn(1, 3, *((64, 64) if "img_size" not in kwargs or kwargs["img_size"] == 64 else kwargs["img_size"]))
    cap = capture_attention(model, x)
    n = cap.attentions[0].shape[-1]
    for layer, head, query in ((0, 0, 0), (len(model.blocks) - 1, 1, n - 1), (1, 2, cap.num_prefix_tokens)):
        s = step_through(model, x, layer, head, query)
        np.testing.assert_allclose(s.projected, s.model_projected, atol=1e-5)
        np.testing.assert_allclose(s.residual, s.model_residual, atol=1e-5)
        np.testing.assert_allclose(s.rerun_block_output, s.model_block_output, atol=1e-5)
        np.testing.assert_allclose(s.probs, cap.attentions[layer][0, head, query].numpy(), atol=1e-6)
        np.testing.assert_allclose(s.out, s.heads_out[head * s.q.size:(head + 1) * s.q.size])
        assert s.num_keys == n and len(s.key_labels) == n and s.probs.sum() == pytest.approx(1, abs=1e-5)
    assert s.key_labels[0] == "CLS"


def test_each_step_by_hand_on_a_tiny_vit_with_identity_projections():
    """embed 4, 2 heads of 2: q = k = v = the normalised token, so every number is a dot product."""
    model = VisionTransformer(img_size=8, patch_size=4, embed_dim=4, depth=1, num_heads=2, num_classes=3,
                              class_token=True).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        model.pos_embed.normal_()
        model.cls_token.normal_()
        attn = model.blocks[0].attn
        attn.qkv.weight.copy_(torch.cat([torch.eye(4)] * 3))
        attn.qkv.bias.zero_()
        attn.proj.weight.copy_(torch.eye(4) * 2)
        attn.proj.bias.fill_(1.0)
    x = torch.randn(1, 3, 8, 8)
    s = step_through(model, x, layer=0, head=1, query=3)
    tokens = s.k  # the head's slice of every normalised token (identity q/k/v)
    np.testing.assert_allclose(s.q, s.x[2:4], atol=1e-6)
    np.testing.assert_allclose(s.v, tokens, atol=1e-6)
    dot = tokens @ s.x[2:4]
    np.testing.assert_allclose(s.dot, dot, atol=1e-6)
    assert s.scale == pytest.approx(2 ** -0.5)
    np.testing.assert_allclose(s.logits, dot / np.sqrt(2), atol=1e-6)
    e = np.exp(s.logits - s.logits.max())
    np.testing.assert_allclose(s.probs, e / e.sum(), atol=1e-6)
    np.testing.assert_allclose(s.out, (e / e.sum()) @ tokens, atol=1e-6)
    np.testing.assert_allclose(s.projected, 2 * s.heads_out + 1, atol=1e-5)  # proj = 2·I, bias 1
    np.testing.assert_allclose(s.residual, s.block_input + s.projected, atol=1e-5)  # no layer scale
    assert not s.bias.any() and not s.mask.any() and s.key_labels == ("CLS", "(0, 0)", "(0, 1)", "(1, 0)", "(1, 1)")


def test_out_of_range_arguments_are_refused_before_anything_runs():
    model = _random(timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=2))
    x = torch.randn(1, 3, 32, 32)
    for layer, head, query, word in ((2, 0, 0, "layer"), (0, 3, 0, "head"), (0, 0, 5, "query token"),
                                     (-1, 0, 0, "layer")):
        with pytest.raises(ValueError, match=word):
            step_through(model, x, layer, head, query)


def test_export_writes_the_steps_arrays(tmp_path):
    from explorer.cli import main

    out = tmp_path / "step.npz"
    assert main(["export", "attention", "--model", "demo_vit", "--image", "assets/examples/chelsea.jpg",
                 "--step", "5", "1", "12", "--out", str(out)]) == 0
    with np.load(out) as d:
        assert d["step_k"].shape == d["step_v"].shape == (65, d["step_q"].size)
        for name in ("step_logits", "step_bias", "step_mask", "step_probs"):
            assert d[name].shape == (65,)
        np.testing.assert_allclose(d["step_probs"], d["attention"][5, 1, 12], atol=1e-6)
        assert d["step_out"].shape == d["step_q"].shape and d["step_x"].shape == (96,)
    with pytest.raises(SystemExit, match="--step: layer 9 is out of range"):
        main(["export", "attention", "--model", "demo_vit", "--image", "assets/examples/chelsea.jpg",
              "--step", "9", "0", "0", "--out", str(out)])


def test_every_step_has_a_titled_figure_with_axes_and_a_colour_bar_and_a_formula_in_both_languages():
    from explorer.lenses.attention.step import STEPS
    from explorer.lenses.attention.step_view import step_figure, step_markdown

    model = _random(timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=2))
    s = step_through(model, torch.randn(1, 3, 32, 32), 1, 2, 3)
    image = np.zeros((32, 32, 3), np.uint8)
    for i, name in enumerate(STEPS):
        for lang in ("en", "zh"):
            fig = step_figure(s, i, image, (16, 16), lang).to_dict()
            layout = fig["layout"]
            assert layout["title"]["text"] and layout["xaxis"]["title"]["text"] and layout["yaxis"]["title"]["text"]
            assert any("colorbar" in (tr.get("marker") or {}) or tr.get("type") == "heatmap" for tr in fig["data"])
            text = step_markdown(s, i, lang)
            assert f"**{i + 1} · " in text
            # the prefix keys' values, which the image cannot show, are in words where keys are drawn
            assert ("Prefix keys" in text or "前缀 key" in text) == (name in ("dot", "scale", "softmax"))
