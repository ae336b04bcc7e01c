"""The position-bias lens: the index formula and the gather on hand-checkable cases, Swin's
tables against timm, CrossFormer's DPB against its dpb_to_rpb conversion, the SDA/LDA groups,
and the tab (built in a page, rendered for a Swin and a CrossFormer in both languages)."""

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest
import timm
import torch
from PIL import Image
from timm.models.swin_transformer import SwinTransformer, WindowAttention

from explorer.core.images import load_image
from explorer.core.weights import LoadedModel
from explorer.core.zoo import entries_for
from explorer.lenses.bias import compute, tab
from explorer.lenses.bias.compute import (analyze, analyze_image, export_arrays, gather_bias,
                                          pair_offsets, relative_position_index, table_offsets)
from explorer.models.crossformer import (CrossFormer, block_layout, dpb_table, dpb_to_rpb,
                                         lda_groups, sda_groups)
from explorer.ui.widgets import PageContext, Translations

# 64 px, groups of 4: 16×16 and 8×8 token maps run SDA/LDA, 4×4 and 2×2 fall back to SDA.
SMALL_CF = dict(img_size=64, embed_dim=48, depths=[2, 2, 1, 1], num_heads=[2, 2, 4, 4],
                group_size=[4, 4, 4, 4], num_classes=5)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def crossformer():
    torch.manual_seed(0)
    model = CrossFormer(**SMALL_CF).eval()
    with torch.no_grad():  # the default init makes the DPB output ~0
        for name, p in model.named_parameters():
            if ".pos." in name:
                p.normal_(0.0, 0.7)
    return model


@pytest.fixture(scope="module")
def swin():
    torch.manual_seed(0)
    model = SwinTransformer(img_size=32, patch_size=2, window_size=4, depths=(2, 2), num_heads=(2, 4),
                            embed_dim=16, num_classes=5, drop_path_rate=0.0).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, WindowAttention):
                m.relative_position_bias_table.normal_()
    return model


# --------------------------------------------------------------------------- the mathematics

def test_index_formula_for_m2_by_hand():
    # Slots (0,0) (0,1) (1,0) (1,1); index = (Δh + 1)·3 + (Δw + 1), Δ = query − key.
    expected = np.array([[4, 3, 1, 0],
                         [5, 4, 2, 1],
                         [7, 6, 4, 3],
                         [8, 7, 5, 4]])
    np.testing.assert_array_equal(relative_position_index(2), expected)
    dh, dw = table_offsets(2)  # the 9 offsets, h-major: table row r holds (Δh, Δw)
    np.testing.assert_array_equal(dh, [-1, -1, -1, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(dw, [-1, 0, 1, -1, 0, 1, -1, 0, 1])
    pdh, pdw = pair_offsets(2)
    np.testing.assert_array_equal(dh[expected], pdh)  # each pair reads the row of its offset
    np.testing.assert_array_equal(dw[expected], pdw)
    assert set(expected.ravel()) == set(range(9))  # every one of the 9 offsets occurs


@pytest.mark.parametrize("ws", [2, 3, (2, 3), (3, 2)])
def test_gather_equals_a_naive_double_loop(ws):
    mh, mw = (ws, ws) if isinstance(ws, int) else ws
    heads = 3
    table = np.random.default_rng(0).normal(size=((2 * mh - 1) * (2 * mw - 1), heads))
    slots = [(r, c) for r in range(mh) for c in range(mw)]
    naive = np.zeros((heads, len(slots), len(slots)))
    for i, (ri, ci) in enumerate(slots):
        for j, (rj, cj) in enumerate(slots):
            row = (ri - rj + mh - 1) * (2 * mw - 1) + (ci - cj + mw - 1)
            naive[:, i, j] = table[row]
    np.testing.assert_array_equal(gather_bias(table, relative_position_index((mh, mw))), naive)


# --------------------------------------------------------------------------- Swin (timm)

def test_swin_tables_are_timms(swin):
    analysis = analyze(swin)
    assert analysis.family == "swin" and analysis.depths == (2, 2)
    assert [b.kind for b in analysis.blocks] == ["W-MSA", "SW-MSA", "W-MSA", "SW-MSA"]
    for item in analysis.blocks:
        attn = swin.layers[item.stage].blocks[item.block].attn
        table = attn.relative_position_bias_table.detach().numpy()
        np.testing.assert_array_equal(item.table, table)
        np.testing.assert_array_equal(item.index, attn.relative_position_index.numpy())
        with torch.no_grad():
            np.testing.assert_array_equal(item.gathered(), attn._get_rel_pos_bias()[0].numpy())
        assert item.head_tables().shape == (attn.num_heads, 7, 7)
        # head table cell (Δh, Δw) is the table row of that offset
        dh, dw = table_offsets(item.window)
        np.testing.assert_array_equal(item.head_tables()[:, dh + 3, dw + 3], table.T)
    arrays = export_arrays(analysis)
    np.testing.assert_array_equal(arrays["stage1_block1_rpb_table"], analysis.block(1, 1).table)
    assert arrays["stage0_block0_relative_position_index"].shape == (16, 16)


# --------------------------------------------------------------------------- CrossFormer

def test_crossformer_dpb_at_trained_g_is_the_converted_table(crossformer):
    analysis = analyze(crossformer)
    rpb = dpb_to_rpb(crossformer)
    assert analysis.family == "crossformer" and [b.kind for b in analysis.blocks] == \
        ["SDA", "LDA", "SDA", "LDA", "SDA", "SDA"]
    for item in analysis.blocks:
        attn = crossformer.layers[item.stage].blocks[item.block].attn
        converted = rpb.layers[item.stage].blocks[item.block].attn.relative_position_bias_table
        assert item.source == "dpb" and item.group_size == 4
        np.testing.assert_array_equal(item.table, converted.detach().numpy())
        assert np.abs(item.dpb[4] - item.table).max() <= 1e-6 and item.dpb_max_diff <= 1e-6
        assert np.abs(item.table).max() > 0.1  # the check is not comparing zeros
        for g in (2, 6, 14):
            assert item.dpb[g].shape == ((2 * g - 1) ** 2, attn.num_heads)
            assert item.dpb_grid(g).shape == (attn.num_heads, 2 * g - 1, 2 * g - 1)
            with torch.no_grad():
                np.testing.assert_allclose(item.dpb[g], dpb_table(attn.pos, g).numpy(), atol=1e-6)
        # a smaller G' evaluates the same offsets: the centre of the trained table
        dh, dw = table_offsets(2)
        np.testing.assert_allclose(item.dpb[2], item.table[(dh + 3) * 7 + dw + 3], atol=1e-6)
    assert analysis.dpb_max_diff <= 1e-6
    arrays = export_arrays(analysis)
    np.testing.assert_array_equal(arrays["stage0_block1_dpb_table_G4"], analysis.block(0, 1).dpb[4])
    np.testing.assert_array_equal(arrays["stage0_block1_converted_rpb_table"],
                                  analysis.block(0, 1).table)
    assert float(arrays["stage0_block1_dpb_max_abs_diff"]) <= 1e-6


def test_converted_model_is_read_as_rpb(crossformer):
    analysis = analyze(dpb_to_rpb(crossformer))
    assert all(b.source == "rpb" and not b.has_dpb for b in analysis.blocks)
    np.testing.assert_array_equal(analysis.block(1, 0).table, analyze(crossformer).block(1, 0).table)


def _picture(h: int = 90, w: int = 120):
    pixels = np.random.default_rng(3).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return load_image(Image.fromarray(pixels))


def _loaded(model, family: str) -> LoadedModel:
    entry = next(e for e in entries_for((family,)))
    return LoadedModel(entry=entry, shown=entry, model=model, source="random",
                       weights_id=f"test-bias-{family}-{id(model)}",
                       data_config=timm.data.resolve_data_config(model=model), class_names=None)


def test_crossformer_groups_on_the_image(crossformer):
    result = analyze_image(_loaded(crossformer, "crossformer"), _picture())
    assert result.model_image.shape == (64, 64, 3)
    assert result.grids == [(16, 16), (8, 8), (4, 4), (2, 2)]
    assert result.token_px == [(4, 4), (8, 8), (16, 16), (32, 32)]
    np.testing.assert_array_equal(result.group_maps[0][0], sda_groups(16, 16, 4).numpy())
    np.testing.assert_array_equal(result.group_maps[0][1], lda_groups(16, 16, 4).numpy())
    # LDA on 16×16 with G=4: interval 4, group = (r mod 4)·4 + (c mod 4)
    r, c = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    np.testing.assert_array_equal(result.group_maps[0][1], (r % 4) * 4 + c % 4)
    assert result.layouts[2][0] == block_layout(4, 4, 4, lda=False)
    assert result.layouts[1][1].kind == "LDA"


# --------------------------------------------------------------------------- the tab

def _figures(outputs) -> list[go.Figure]:
    found = []
    for value in outputs.values():
        if isinstance(value, dict):
            value = value.get("value")
        if isinstance(value, go.Figure):
            found.append(value)
    return found


def test_tab_builds_in_a_page():
    with gr.Blocks():
        ctx = PageContext(image=gr.State(None), lang=gr.Radio(["en", "zh"], value="en"),
                          translations=Translations(), active_tab=gr.State("bias"))
        tab.build(ctx)
    lens = ctx.lenses[-1]
    assert lens.tab_id == "bias" and lens.inputs[0] is ctx.image
    assert len(lens.outputs) == 12


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_render_swin_and_crossformer(swin, crossformer, lang):
    loaded = _loaded(swin, "swin")
    analysis = analyze(swin)
    for head in (None, 1):
        out = tab.render(loaded, analysis, None, tab.BiasView(1, 1, head).clamp(analysis), lang)
        figs = _figures(out)
        assert len(figs) == 3 and all(f.layout.title.text for f in figs)
        assert out["dpb_plot"]["visible"] is False and out["groups_plot"]["visible"] is False  # CrossFormer-only plots
    assert "(\\Delta h + 3)\\cdot 7 + (\\Delta w + 3)" in out["formula"]  # M = 4 substituted

    loaded = _loaded(crossformer, "crossformer")
    analysis = analyze(crossformer)
    groups = analyze_image(loaded, _picture())
    for view, n_figs in ((tab.BiasView(0, 1, None, None), 5), (tab.BiasView(1, 1, 0, 9), 5)):
        view = view.clamp(analysis)
        out = tab.render(loaded, analysis, groups, view, lang)
        figs = _figures(out)
        assert len(figs) == n_figs and all(f.layout.title.text for f in figs)
        assert out["group"]["visible"] and out["group"]["value"] == (view.group or 4)
    assert "Checked — DPB ≡ RPB" in out["info"] or "已验证" in out["info"]  # the check is stated, in words
    without_image = tab.render(loaded, analysis, None, view, lang)
    assert _figures(without_image)[-1].layout.title.text


def test_refresh_reads_tables_once_per_model(crossformer, monkeypatch):
    loaded = _loaded(crossformer, "crossformer")
    monkeypatch.setattr(tab, "lens_model", lambda lens, key, allow_download=True: loaded)
    monkeypatch.setattr("explorer.core.results.get_model", lambda key, allow_download=True, **_: loaded)
    calls = []
    real = compute.analyze
    monkeypatch.setattr(tab, "analyze", lambda model: calls.append(1) or real(model))
    image = _picture()
    for stage, head, group in ((0, tab.ALL, 4), (1, 0, 12), (3, 1, 2)):
        out = tab.refresh(tab.Controls(image, loaded.entry.key, "model", False, stage, 0, head,
                                       group, "en"))
        assert all(f.layout.title.text for f in _figures(out))
    assert calls == [1]


# --------------------------------------------------------------------------- SwinV2's CPB

def _swinv2(perturb: bool = True):
    import timm

    torch.manual_seed(0)
    model = timm.create_model("swinv2_tiny_window8_256", pretrained=False, img_size=128, window_size=8,
                              depths=(2, 2), embed_dim=48, num_heads=(3, 6)).eval()
    if perturb:  # away from the init, so that the CPB MLP and the logit scales matter
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return model


def test_cpb_table_is_16_sigmoid_of_the_mlp_on_log_spaced_offsets():
    """A CPB MLP wired to output the log-spaced Δh for head 0: the table is 16·σ(that)."""
    from explorer.models.swinv2_cpb import cpb_table

    attn = _swinv2(perturb=False).layers[0].blocks[0].attn
    m = attn.window_size[0]
    with torch.no_grad():
        first, second = attn.cpb_mlp[0], attn.cpb_mlp[2]
        first.weight.zero_(), first.bias.zero_(), second.weight.zero_()
        first.weight[0, 0], first.weight[1, 0] = 1.0, -1.0  # relu(x) and relu(−x) of the Δh coordinate
        second.weight[0, 0], second.weight[0, 1] = 1.0, -1.0  # head 0: relu(x) − relu(−x) = x
        table = cpb_table(attn).numpy()
    side = 2 * m - 1
    head0 = table[:, 0].reshape(side, side)
    for dh in (0, 1, m - 1, -(m - 1)):
        log_spaced = np.sign(dh) * np.log2(1 + 8 * abs(dh) / (m - 1)) / np.log2(8)
        np.testing.assert_allclose(head0[dh + m - 1], 16 / (1 + np.exp(-log_spaced)), rtol=1e-6)
    np.testing.assert_allclose(table[:, 1:], 8.0)  # the other heads see 0: 16·σ(0)


def test_cpb_to_table_gives_the_same_logits_and_the_lens_reads_swinv2():
    from explorer.lenses.bias.compute import analyze, export_arrays
    from explorer.models.swinv2_cpb import TableWindowAttention, cpb_to_table

    model = _swinv2()
    converted = cpb_to_table(model)
    assert sum(isinstance(m, TableWindowAttention) for m in converted.modules()) == 4
    assert not any(isinstance(m, TableWindowAttention) for m in model.modules())  # the model is left as it is
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(converted(x), model(x), atol=1e-5, rtol=0)
    analysis = analyze(model)
    assert [b.kind for b in analysis.blocks] == ["W-MSA", "SW-MSA", "W-MSA", "SW-MSA"]
    assert all(b.source == "cpb" and b.table.shape == (225, b.heads) for b in analysis.blocks)
    assert analysis.cpb_logit_diff <= 1e-5
    arrays = export_arrays(analysis)
    np.testing.assert_allclose(arrays["stage1_block1_cpb_table"],
                               converted.layers[1].blocks[1].attn.relative_position_bias_table.detach().numpy())
    assert arrays["stage0_block0_cpb_offsets"].shape == (15, 15, 2)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_tab_draws_a_swinv2_cpb_table_with_its_check(lang):
    model = _swinv2()
    analysis = analyze(model)
    out = tab.render(_loaded(model, "swin"), analysis, None, tab.BiasView(1, 1, None).clamp(analysis), lang)
    figs = _figures(out)
    assert len(figs) == 3 and all(f.layout.title.text for f in figs)
    assert "CPB" in figs[0].layout.title.text
    text = " ".join(str(v) for v in out.values() if isinstance(v, str))
    assert ("CPB ≡ table" if lang == "en" else "CPB ≡ 表") in text


def test_swinv2_opens_in_the_position_bias_and_the_swin_windows_lenses():
    from explorer.core.errors import UserFacingError
    from explorer.lenses.registry import model_for_lens

    assert model_for_lens("bias", "swinv2_tiny_window8_256").family == "swin"
    assert model_for_lens("swin", "swinv2_tiny_window8_256").family == "swin"  # the same windows and masks
    with pytest.raises(UserFacingError, match="Attention lens cannot read swinv2_tiny.*open it in: Explain, Swin windows, Position bias"):
        model_for_lens("attention", "swinv2_tiny_window8_256")
