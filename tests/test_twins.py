"""The Twins lens: captured LSA/GSA attention equals timm's own unfused computation, the
windows and sub-sampled key grids for hand-checkable sizes, the PEG's addition, and the
analysis of the bundled demo Twins-SVT."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import timm
import torch
from timm.models.twins import GlobalSubSampleAttn, LocallyGroupedAttn

from explorer.lenses.twins.compute import (analyze, capture_twins, export_arrays, gsa_key_grid,
                                           lsa_windows, total_stride)


def tiny_svt(**kwargs):
    torch.manual_seed(0)
    args = dict(img_size=64, patch_size=4, embed_dims=(16, 32), num_heads=(2, 4), mlp_ratios=(2, 2),
                depths=(2, 2), wss=(4, 4), sr_ratios=(4, 2), num_classes=5)
    return timm.create_model("twins_svt_small", pretrained=False, **{**args, **kwargs}).eval()


def tiny_pcpvt():
    torch.manual_seed(0)
    return timm.create_model("twins_pcpvt_small", pretrained=False, img_size=64, embed_dims=(16, 32),
                             num_heads=(1, 2), mlp_ratios=(2, 2), depths=(2, 1), sr_ratios=(4, 2),
                             num_classes=5).eval()


def unfused_reference(model, x):
    """Run timm's own unfused path (fused_attn off) and take the softmax it computes from the
    input of ``attn_drop``: the reference the capture must equal."""
    model = copy.deepcopy(model)
    probs, handles = {}, []
    for name, module in model.named_modules():
        if isinstance(module, (LocallyGroupedAttn, GlobalSubSampleAttn)):
            module.fused_attn = False
            handles.append(module.attn_drop.register_forward_hook(
                lambda m, args, out, name=name: probs.__setitem__(name, out.detach().clone())))
    with torch.no_grad():
        logits = model(x)
    for h in handles:
        h.remove()
    return logits, probs


def test_window_and_key_grids_by_hand():
    assert lsa_windows((16, 16), 4) == ((4, 4), (16, 16))
    assert lsa_windows((7, 10), 4) == ((2, 3), (8, 12))  # zero-padded bottom/right
    assert lsa_windows((14, 14), 7) == ((2, 2), (14, 14))
    assert gsa_key_grid((16, 16), 4) == (4, 4)
    assert gsa_key_grid((7, 10), 2) == (3, 5)  # the kernel = stride conv floors
    assert gsa_key_grid((4, 4), 1) == (4, 4)  # sr 1: plain global attention


@pytest.mark.parametrize("size", [(64, 64), (56, 72), (36, 52)])  # whole and padded windows
def test_capture_equals_unfused_timm(size):
    model = tiny_svt()
    x = torch.randn(2, 3, *size)
    cap = capture_twins(model, x)
    ref_logits, ref = unfused_reference(model, x)
    assert torch.allclose(cap.logits, ref_logits, atol=1e-5)  # fused and unfused agree too
    assert set(ref) == set(cap.probs)
    for name, p in ref.items():
        assert cap.probs[name].shape == p.shape, name
        assert torch.allclose(cap.probs[name], p, atol=1e-6), name


def test_analysis_geometry_svt():
    model = tiny_svt()
    a = analyze(model, torch.randn(1, 3, 36, 52))
    assert a.variant == "SVT" and a.stage_grids == [(9, 13), (4, 6)] and a.token_px == [4, 8]
    lsa, gsa = a.block(0, 0), a.block(0, 1)
    assert (lsa.kind, lsa.windows, lsa.padded, lsa.is_padded) == ("LSA", (3, 4), (12, 16), True)
    assert (gsa.kind, gsa.sr, gsa.key_grid) == ("GSA", 4, (2, 3))
    assert gsa.probs.shape == (2, 9 * 13, 6)
    # LSA: a query's map is NaN outside its window, and with padding in the window the real
    # members plus the padding weight make 1
    m = lsa.query_attention(None, 8, 12)  # the bottom-right window holds 1x1 real token
    assert np.isfinite(m).sum() == 1 and np.isfinite(m[8, 12])
    assert np.isclose(np.nansum(m) + lsa.padding_weight(None, 8, 12), 1.0, atol=1e-5)
    assert lsa.window_of(8, 12) == (11, 0)
    inner = lsa.query_attention(1, 1, 2)
    assert np.isfinite(inner).sum() == 16 and np.isclose(np.nansum(inner), 1.0, atol=1e-5)
    assert np.isfinite(inner[0:4, 0:4]).all()
    # GSA: over the sub-sampled keys, per head and the mean
    g = gsa.query_attention(0, 3, 5)
    assert g.shape == (2, 3) and np.isclose(g.sum(), 1.0, atol=1e-5)
    assert np.allclose(gsa.query_attention(None, 3, 5),
                       gsa.probs[:, 3 * 13 + 5].mean(0).reshape(2, 3), atol=1e-6)


def test_pcpvt_is_global_subsampled_everywhere_and_peg_is_measured():
    model = tiny_pcpvt()
    a = analyze(model, torch.randn(1, 3, 64, 64))
    assert a.variant == "PCPVT" and {b.kind for b in a.blocks} == {"GSA"}
    assert [b.key_grid for b in a.blocks] == [(4, 4), (4, 4), (4, 4)]
    assert len(a.peg) == 2
    # the PEG adds exactly its depthwise conv's output: recompute it by hand for stage 0
    captured = capture_twins(model, torch.zeros(1, 3, 64, 64))
    inp, added = captured.peg[0]
    conv = model.pos_block[0].proj[0]
    feat = inp.transpose(1, 2).reshape(1, -1, 16, 16)
    with torch.no_grad():
        expected = conv(feat.clone()).flatten(2).transpose(1, 2)
    assert torch.allclose(added, expected, atol=1e-5)
    assert all(p.relative > 0 for p in a.peg)


def test_shape_table_puts_the_peg_after_the_first_block_of_each_stage():
    a = analyze(tiny_svt(), torch.randn(1, 3, 64, 64))
    names = [n for n, _ in a.shapes]
    for s in range(2):
        assert names.index(f"pos_block.{s}") == names.index(f"blocks.{s}.0") + 1
    assert dict(a.shapes)["patch_embeds.0"] == (1, 256, 16)
    assert names[-1] == "head"


def test_concurrent_captures_do_not_mix():
    from concurrent.futures import ThreadPoolExecutor

    model = tiny_svt()
    xs = [torch.randn(1, 3, 64, 64) for _ in range(6)]
    alone = [capture_twins(model, x).probs["blocks.1.1.attn"] for x in xs]
    installed = [len(m._forward_hooks) for m in model.modules()]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(lambda x: capture_twins(model, x).probs["blocks.1.1.attn"], xs))
    for a, b in zip(alone, together):
        assert torch.allclose(a, b, atol=1e-6)
    assert [len(m._forward_hooks) for m in model.modules()] == installed  # hooks once per model, not per call


def test_demo_twins_analysis_and_export():
    from explorer.train.recipes import load_demo

    model, card = load_demo("twins")
    assert total_stride(model) == 16
    a = analyze(model, torch.randn(1, 3, 64, 64))
    assert a.stage_grids == [(16, 16), (8, 8), (4, 4)]
    assert [(b.kind, b.windows if b.kind == "LSA" else b.key_grid) for b in a.blocks] == [
        ("LSA", (4, 4)), ("GSA", (4, 4)), ("LSA", (2, 2)), ("GSA", (4, 4)), ("LSA", (1, 1)), ("GSA", (4, 4))]
    arrays = export_arrays(a)
    assert arrays["stage0_block0_probs"].shape == (16, 2, 16, 16)
    assert arrays["stage0_block1_probs"].shape == (2, 256, 16)
    assert arrays["stage0_block1_geometry"].tolist() == [16, 16, 0, 0, 0, 0, 0, 4, 4, 4]
    assert arrays["peg_relative"].shape == (3,)


# --------------------------------------------------------------------------- the tab

def _picture(h: int = 90, w: int = 120):
    from PIL import Image

    from explorer.core.images import load_image

    pixels = np.random.default_rng(3).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return load_image(Image.fromarray(pixels))


def _loaded(model):
    from explorer.core.capture import install_hooks
    from explorer.core.weights import LoadedModel
    from explorer.core.zoo import entries_for

    entry = entries_for(("twins",))[0]
    return LoadedModel(entry=entry, shown=entry, model=install_hooks(model), source="random",
                       weights_id=f"test-twins-lens-{id(model)}",
                       data_config=timm.data.resolve_data_config(model=model), class_names=tuple("abcde"))


def test_tab_builds_in_a_page():
    import gradio as gr

    from explorer.lenses.twins import tab
    from explorer.ui.widgets import PageContext, Translations

    with gr.Blocks():
        ctx = PageContext(image=gr.State(None), lang=gr.Radio(["en", "zh"], value="en"),
                          translations=Translations(), active_tab=gr.State("twins"))
        tab.build(ctx)
    lens = ctx.lenses[-1]
    assert lens.tab_id == "twins" and lens.inputs[0] is ctx.image and len(lens.outputs) == 19  # with the step-through's text and figure


@pytest.mark.parametrize("make", [tiny_svt, tiny_pcpvt])
def test_render_and_controls_never_rerun_the_model(make, monkeypatch):
    import plotly.graph_objects as go

    from forward_counter import forward_count
    from explorer.lenses.twins import tab
    from explorer.ui.stage_tab import StageControls
    from explorer.ui.widgets import HEAD_MEAN

    loaded = _loaded(make())
    monkeypatch.setattr("explorer.core.results.get_model", lambda key, allow_download=True, **_: loaded)
    image = _picture()

    def controls(stage, block, head, view, lang, geometry="native"):
        return StageControls(image, loaded.entry.key, geometry, False, stage, block, head, view, lang)

    before = forward_count()
    out = tab.TAB.refresh(controls(None, None, None, {}, "en"))
    assert forward_count() == before + 1
    view = out["view"]
    for lang in ("en", "zh"):
        outputs = [tab.TAB.refresh(controls(0, 1, HEAD_MEAN, view, lang)),
                   tab.TAB.refresh(controls(0, 0, 1, view, lang)),
                   tab.TAB.change_stage(controls(1, 0, HEAD_MEAN, view, lang)),
                   tab.TAB.click(controls(0, 1, HEAD_MEAN, view, lang), (440.0, 300.0))]
        for result in outputs:
            figs = [v for v in result.values() if isinstance(v, go.Figure)]
            assert len(figs) == 5
            for fig in figs:
                assert fig.layout.title.text
            assert result["predictions"] and len(result["predictions"]) == 5
            assert "PEG" in result["shapes"] and result["info"]
        assert outputs[2]["view"]["stage"] == 1
        assert outputs[-1]["view"]["query"][1] > 0
    assert forward_count() == before + 1, "a stage/block/head/click change re-ran the model"


def test_render_shows_padding_and_key_cells_on_an_odd_size():
    from explorer.lenses.twins import figures, tab
    from explorer.lenses.twins.compute import analyze_image

    loaded = _loaded(tiny_svt())
    result = analyze_image(loaded, _picture(90, 120), "native")
    a = result.twins
    lsa, gsa = tab.block_pair(a, 0, 1)
    assert (lsa.block, gsa.block) == (0, 1)
    fig = figures.layout_figure(a, result.model_image, 0, (lsa, gsa), (0, 0), "en")
    assert "LSA:" in fig.layout.title.text and "GSA:" in fig.layout.title.text
    # the key cells are drawn as dashed lines: (kh + 1) + (kw + 1) of them
    dashed = [s for s in fig.layout.shapes if s.line.dash == "dash"]
    assert len(dashed) == gsa.key_grid[0] + 1 + gsa.key_grid[1] + 1
    table = tab.shape_table(a, "zh")
    assert "**`pos_block.0`**" in table and "PEG" in table


def test_every_ui_string_is_free_of_control_characters_and_formats_in_both_languages():
    r"""A LaTeX command written with one backslash in a plain string ("\times") starts with an
    escape ("\t", a tab); every table entry must also have both languages."""
    from explorer.ui.i18n import STRINGS

    for key, (en, zh) in STRINGS.items():
        for text in (en, zh):
            assert text and not any(ord(ch) < 32 and ch != "\n" for ch in text), key
