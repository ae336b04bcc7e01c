"""The step-through as the tabs show it: one recorded forward per image serves every block,
head and query (equal to a fresh ``step_through``), each step's numbers by hand on a tiny ViT
with identity projections, the stage tabs' (stage, block, query) landing on the right block and
token (Swin: the lens's own window attention), every step's figure and formula line in both
languages for every family, and the export's arrays."""

from __future__ import annotations

import re

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.models.vision_transformer import VisionTransformer

from explorer.core.capture import capture_attention
from explorer.lenses.stepping import block_count, record, stage_layers, step_from, step_through
from explorer.lenses.stepping.figures import STEPS, step_figure, step_markdown

pytestmark = pytest.mark.usefixtures("one_thread")


def _random(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model.eval()


def _fields(s):
    return {name: getattr(s, name) for name in ("x", "q", "k", "v", "dot", "logits", "bias", "mask", "probs", "out",
                                                "heads_out", "projected", "residual", "key_positions")}


@pytest.mark.parametrize("name, kwargs, size", [
    ("vit_tiny_patch16_224", dict(img_size=64, reg_tokens=2), (64, 64)),
    ("deit_tiny_distilled_patch16_224", dict(img_size=64), (64, 64)),
    ("swin_tiny_patch4_window7_224", dict(img_size=(84, 112), window_size=7, depths=(2, 2), embed_dim=24,
                                          num_heads=(2, 4)), (84, 112)),
    ("twins_svt_small", dict(img_size=64, depths=(1, 2, 1, 1), embed_dims=(16, 32, 48, 64),
                             num_heads=(1, 2, 3, 4)), (64, 64)),
])
def test_one_recorded_forward_serves_every_block_like_a_fresh_step_through(name, kwargs, size):
    model = _random(timm.create_model(name, pretrained=False, num_classes=5, **kwargs))
    x = torch.randn(1, 3, *size)
    recording = record(model, x)
    depth = block_count(model)
    assert sum(len(stage) for stage in stage_layers(model)) == depth and len(recording.values) == depth
    for layer in range(depth):
        fresh = step_through(model, x, layer, 0, 3)
        cached = step_from(model, recording, layer, 0, 3)
        for key, value in _fields(fresh).items():
            np.testing.assert_array_equal(getattr(cached, key), value, err_msg=f"{name} block {layer}: {key}")
        np.testing.assert_allclose(cached.projected, cached.model_projected, atol=1e-5)
        np.testing.assert_allclose(cached.residual, cached.model_residual, atol=1e-5)


def test_vit_probabilities_are_the_captured_attention_with_fused_attention_on():
    model = _random(timm.create_model("vit_small_patch16_224", pretrained=False, img_size=(48, 80), depth=3,
                                      qk_norm=True, init_values=0.1, num_classes=5))
    assert all(b.attn.fused_attn for b in model.blocks)
    x = torch.randn(1, 3, 48, 80)
    cap = capture_attention(model, x)
    recording = record(model, x)
    n = cap.attentions[0].shape[-1]
    for layer, head, query in ((0, 0, 0), (2, 1, n - 1), (1, 2, cap.num_prefix_tokens)):
        s = step_from(model, recording, layer, head, query)
        np.testing.assert_allclose(s.probs, cap.attentions[layer][0, head, query].numpy(), atol=1e-6)
        assert s.grid == (3, 5) and s.num_keys == n
    assert s.key_labels[0] == "CLS" and s.query_position == (0, 0)


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
    s = step_from(model, record(model, torch.randn(1, 3, 8, 8)), layer=0, head=1, query=3)
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
    recording = record(model, torch.randn(1, 3, 32, 32))
    for layer, head, query, word in ((2, 0, 0, "layer"), (0, 3, 0, "head"), (0, 0, 5, "query"),
                                     (-1, 0, 0, "layer"), (0, 0, -1, "query")):
        with pytest.raises(ValueError, match=word):
            step_from(model, recording, layer, head, query)
    with pytest.raises(ValueError, match="not recorded"):
        step_from(model, record(model, torch.randn(1, 3, 32, 32), layers=[0]), 1, 0, 0)


def _picture(h=150, w=200):
    rng = np.random.default_rng(5)
    from explorer.core.images import load_image

    return load_image(Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)))


@pytest.mark.parametrize("lens, model_key", [("swin", "demo_swin"), ("crossformer", "demo_crossformer"),
                                             ("twins", "demo_twins")])
def test_a_stage_tab_steps_through_the_chosen_block_and_token_and_records_once(lens, model_key):
    import importlib

    from forward_counter import forward_count
    from explorer.ui.stage_tab import StageControls

    tab = importlib.import_module(f"explorer.lenses.{lens}.tab").TAB
    image = _picture()

    def controls(stage, block, head, view, lang="en"):
        return StageControls(image, model_key, "model", False, stage, block, head, view, lang)

    out = tab.refresh(controls(None, None, None, {}))
    loaded, result = tab.analyse(image, model_key, "model", False)
    grids = tab.grids(result)
    before = forward_count()
    picks = [(s, b) for s, stage in enumerate(stage_layers(loaded.model)) for b in range(len(stage))]
    for stage, block in picks:
        rows, cols = grids[stage]
        query = (rows - 1, cols // 2)
        target = tab.step_target(controls(stage, block, 1, {**out["view"], "stage": stage, "query": query}))
        step = step_from(target.model, target.recording, target.layer, target.head, target.query)
        assert step.grid == (rows, cols) and step.query_position == query and step.head == 1
        assert target.layer == stage_layers(loaded.model)[stage][block] and target.image.shape[:2] == \
            tab.image_of(result).shape[:2]
        np.testing.assert_allclose(step.projected, step.model_projected, atol=1e-5)
        if lens == "swin":  # the lens's own window attention for this token
            window, slot = result.swin.window_of_token(stage, block, *query)
            np.testing.assert_allclose(step.probs, result.swin.block(stage, block).probs[window, 1, slot], atol=1e-5)
    assert forward_count() == before + 1, "the step-through ran the model more than once for one image"
    assert f"**Stage {stage}, block {block}, head 1, query #{target.query} · " in step_markdown(
        step, 0, "en", place=target.place)


@pytest.mark.parametrize("name, kwargs, size, layer", [
    ("vit_tiny_patch16_224", dict(img_size=32, depth=2, reg_tokens=1), (32, 32), 1),
    ("swin_tiny_patch4_window7_224", dict(img_size=(84, 112), window_size=7, depths=(2, 2), embed_dim=24,
                                          num_heads=(2, 4)), (84, 112), 1),
    ("swinv2_tiny_window8_256", dict(img_size=64, window_size=8, depths=(2, 2), embed_dim=24, num_heads=(2, 4)),
     (64, 64), 1),
    ("twins_svt_small", dict(img_size=64, depths=(1, 2, 1, 1), embed_dims=(16, 32, 48, 64),
                             num_heads=(1, 2, 3, 4)), (64, 64), 2),
])
def test_every_step_has_a_titled_figure_with_axes_and_a_colour_bar_and_a_formula_in_both_languages(
        name, kwargs, size, layer):
    model = _random(timm.create_model(name, pretrained=False, num_classes=3, **kwargs))
    recording = record(model, torch.randn(1, 3, *size))
    s = step_from(model, recording, layer, 1, 0)
    image = np.zeros((*size, 3), np.uint8)
    for i, step in enumerate(STEPS):
        for lang in ("en", "zh"):
            fig = step_figure(s, i, image, lang).to_dict()
            layout = fig["layout"]
            assert layout["title"]["text"] and layout["xaxis"]["title"]["text"] and layout["yaxis"]["title"]["text"]
            assert any("colorbar" in (tr.get("marker") or {}) or tr.get("type") == "heatmap" for tr in fig["data"])
            text = step_markdown(s, i, lang)
            assert f"**{i + 1} · " in text and not re.search(r"\{[a-z_]+\}", text)  # every field filled
            # the keys the image cannot show (prefix tokens) are in words where keys are drawn
            assert ("Keys not on the image" in text or "不在图上的 key" in text) == (
                s.family == "vit" and step in ("dot", "scale", "bias", "mask", "softmax"))
            if step == "bias":
                assert ("Δ=(" in text) == (s.bias_index is not None)
    if s.family == "swin":  # the block is shifted: the mask step says what −100 does, when the window has it
        shifted = [q for q in range(s.grid[0] * s.grid[1]) if (step_from(model, recording, layer, 0, q).mask < 0).any()]
        assert shifted, "a shifted Swin block with no masked key anywhere"
        text = step_markdown(step_from(model, recording, layer, 0, shifted[-1]), STEPS.index("mask"), "en")
        assert "get −100" in text and "different regions" in text


def test_a_swin_windows_keys_are_drawn_where_the_cyclic_shift_took_them_from():
    """The last window of a shifted block gathers tokens from the map's far edges: its keys sit
    on the image in their own (unshifted) places, nowhere else."""
    from explorer.lenses.stepping.figures import key_map

    model = _random(timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=56, window_size=7,
                                      depths=(2,), embed_dim=24, num_heads=(2,), num_classes=3))
    recording = record(model, torch.randn(1, 3, 56, 56))
    s = step_from(model, recording, 1, 0, 14 * 14 - 1)  # bottom-right token of the 14×14 map, shifted block
    grid = key_map(s, s.probs)
    assert np.isfinite(grid).sum() == 49
    rows, cols = np.nonzero(np.isfinite(grid))
    assert {0, 13} <= set(rows.tolist()) and {0, 13} <= set(cols.tolist())  # wrapped from every edge
    np.testing.assert_allclose(np.nansum(grid), 1, atol=1e-5)


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
