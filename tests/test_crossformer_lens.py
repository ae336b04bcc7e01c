"""The CrossFormer lens: SDA/LDA groups of a small random CrossFormer whose maps are larger
than G (so LDA really spreads), a clicked token's attention on exactly its group, the logit
split adding up to the probabilities, the cross-scale convolutions read from the model, and
the tab (built in a page, rendered in both languages without re-running the model)."""

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import pytest
import timm
import torch
from PIL import Image

from explorer.core.capture import install_hooks
from forward_counter import forward_count
from explorer.core.images import load_image
from explorer.core.weights import LoadedModel
from explorer.core.zoo import entries_for
from explorer.lenses.crossformer import tab
from explorer.lenses.crossformer.compute import analyze, analyze_image, export_arrays
from explorer.lenses.plotting import patch_picker_image
from explorer.models.crossformer import NEG_INF, CrossFormer, lda_groups, sda_groups
from explorer.ui.stage_tab import PICKER_SIDE, StageControls
from explorer.ui.widgets import HEAD_MEAN, PageContext, Translations

# Groups of 4. At 64 px the maps are 16×16 (LDA interval 4), 8×8 (interval 2), 4×4 (≤ G: the
# odd block falls back to SDA) and 2×2; at 72 px 18×18 is padded to 20×20 (interval 5).
SMALL_CF = dict(img_size=64, embed_dim=48, depths=[2, 2, 2, 1], num_heads=[2, 2, 4, 4],
                group_size=[4, 4, 4, 4], num_classes=5)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = CrossFormer(**SMALL_CF).eval()
    with torch.no_grad():  # the default init makes the DPB output ~0 and attention ~uniform
        for name, p in m.named_parameters():
            if ".pos." in name or "attn.qkv.weight" in name:
                p.normal_(0.0, 0.5)
    return m


def _input(side: int) -> torch.Tensor:
    return torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(side))


@pytest.fixture(scope="module")
def plain(model):
    return analyze(model, _input(64))


@pytest.fixture(scope="module")
def padded(model):
    return analyze(model, _input(72))


# --------------------------------------------------------------------------- groups

def test_lda_groups_tokens_exactly_an_interval_apart(plain, padded):
    for a, side, interval in ((plain, 16, 4), (padded, 18, 5)):
        item = a.block(0, 1)
        assert item.kind == "LDA" and not item.fallback and item.layout.interval == (interval, interval)
        groups = a.group_map(0, 1)
        assert groups.shape == (side, side)
        np.testing.assert_array_equal(groups, lda_groups(side, side, 4).numpy())
        r, c = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        for dr in range(side):
            for dc in range(side):
                same = groups[dr:, dc:] == groups[:side - dr, :side - dc]
                # same group exactly when the offset is a multiple of the interval
                assert same.all() == (dr % interval == 0 and dc % interval == 0)
                assert same.any() == (dr % interval == 0 and dc % interval == 0)
        np.testing.assert_array_equal(groups, (r % interval) * interval + c % interval)
        # SDA: adjacent 4×4 squares
        np.testing.assert_array_equal(a.group_map(0, 0), sda_groups(side, side, 4).numpy())
    assert plain.block(1, 1).layout.interval == (2, 2)
    fallback = plain.block(2, 1)  # a 4×4 map is ≤ G: the LDA block runs SDA with one group
    assert fallback.lda_block and fallback.fallback and fallback.kind == "SDA"
    assert fallback.layout.num_groups == 1


@pytest.mark.parametrize("head", [None, 1])
def test_clicked_token_attends_exactly_its_group(plain, padded, head):
    for a, queries in ((plain, [(0, 0), (7, 9), (15, 15)]), (padded, [(0, 0), (13, 13), (17, 17)])):
        for stage, block in ((0, 0), (0, 1), (1, 1), (2, 1)):
            grid = a.stage_grids[stage]
            groups = a.group_map(stage, block)
            for r, c in queries:
                r, c = min(r, grid[0] - 1), min(c, grid[1] - 1)
                values = a.token_attention(stage, block, head, r, c)
                members = groups == groups[r, c]
                np.testing.assert_array_equal(~np.isnan(values), members)
                pad = a.padding_attention(stage, block, head, r, c)
                assert 0.0 <= pad < 1e-6  # padded keys get −1e6: no weight at all
                assert np.nansum(values) + pad == pytest.approx(1.0, abs=1e-5)
                if a is padded and (stage, block) == (0, 1) and (r, c) == (13, 13):
                    assert members.sum() == 9  # rows/cols 3, 8, 13 (18 is padding)


def test_padded_lda_group_has_padding_slots(padded):
    item = padded.block(0, 1)
    assert item.layout.is_padded and item.mask is not None
    group, slot = padded.group_of_token(0, 1, 13, 13)
    members = item.members(group)
    assert (members[:, 0] < 0).sum() == 16 - 9
    np.testing.assert_array_equal(item.mask[group][:, members[:, 0] < 0], NEG_INF)
    np.testing.assert_array_equal(item.mask[group][:, members[:, 0] >= 0], 0.0)
    assert tuple(members[slot]) == (13, 13)
    assert padded.padding_attention(0, 1, None, 13, 13) < 1e-6


# --------------------------------------------------------------------------- logit split

def test_logit_split_adds_up(plain, padded):
    for a in (plain, padded):
        for item in a.blocks:
            logits = torch.from_numpy(item.logits)
            np.testing.assert_allclose(logits.softmax(-1).numpy(), item.probs, atol=2e-6)
            for head in range(item.heads):
                content, bias, mask, probs = a.logit_split(item.stage, item.block, 0, head)
                again = torch.from_numpy(content + bias + mask).softmax(-1).numpy()
                np.testing.assert_allclose(again, probs, atol=2e-6)
    assert np.abs(plain.block(0, 1).bias).max() > 0.1  # a real DPB bias, not zeros


# --------------------------------------------------------------------------- cross-scale embedding

def test_cross_scale_layers_are_read_from_the_model(model, plain):
    embed = plain.scale_layer(0)
    assert [c.kernel for c in embed.convs] == [4, 8, 16, 32]
    assert {c.stride for c in embed.convs} == {4}
    assert [c.out_channels for c in embed.convs] == [24, 12, 6, 6]
    assert [c.channels for c in embed.convs] == [(0, 24), (24, 36), (36, 42), (42, 48)]
    assert [c.kernel for c in plain.scale_layer(1).convs] == [2, 4]
    assert [c.out_channels for c in plain.scale_layer(2).convs] == [96, 96]
    assert plain.scale_layer(3).input_px == 16 and plain.scale_layer(3).token_px == 32
    assert [layer.stage for layer in plain.scale_layers] == [0, 1, 2, 3]
    for layer in plain.scale_layers:  # every kernel is centred on its token
        for conv in layer.convs:
            y0, x0, y1, x1 = layer.footprint(conv, 3, 2)
            assert (y0 + y1) / 2 == (3 + 0.5) * layer.token_px
            assert (x0 + x1) / 2 == (2 + 0.5) * layer.token_px
            assert y1 - y0 == conv.kernel * layer.input_px
    arrays = export_arrays(plain)
    assert arrays["cross_scale_convs"].shape == (4 + 2 * 3, 8)


def test_export_arrays(plain):
    arrays = export_arrays(plain)
    assert str(arrays["stage0_block1_kind"]) == "LDA" and str(arrays["stage2_block1_kind"]) == "SDA"
    np.testing.assert_array_equal(arrays["stage0_block1_group_map"], plain.group_map(0, 1))
    np.testing.assert_array_equal(arrays["stage0_block1_probs"], plain.block(0, 1).probs)
    np.testing.assert_array_equal(arrays["stage1_block0_content"], plain.block(1, 0).content)
    np.testing.assert_array_equal(arrays["stage1_block1_bias"], plain.block(1, 1).bias)
    assert list(arrays["stage0_block1_layout"]) == [16, 16, 4, 4, 4, 16, 16]
    assert len(arrays["block_names"]) == sum(SMALL_CF["depths"])


# --------------------------------------------------------------------------- the tab

def _picture(h: int = 90, w: int = 120):
    pixels = np.random.default_rng(3).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return load_image(Image.fromarray(pixels))


def _loaded(model) -> LoadedModel:
    entry = entries_for(("crossformer",))[0]
    return LoadedModel(entry=entry, shown=entry, model=install_hooks(model), source="random",
                       weights_id=f"test-crossformer-lens-{id(model)}",
                       data_config=timm.data.resolve_data_config(model=model),
                       class_names=tuple("abcde"))


def _figures(outputs: dict) -> list[go.Figure]:
    return [v for v in outputs.values() if isinstance(v, go.Figure)]


def test_tab_builds_in_a_page():
    with gr.Blocks():
        ctx = PageContext(image=gr.State(None), lang=gr.Radio(["en", "zh"], value="en"),
                          translations=Translations(), active_tab=gr.State("crossformer"))
        tab.build(ctx)
    lens = ctx.lenses[-1]
    assert lens.tab_id == "crossformer" and lens.inputs[0] is ctx.image
    assert len(lens.outputs) == 20  # with the step-through's text and figure


def test_render_and_controls_never_rerun_the_model(model, monkeypatch):
    loaded = _loaded(model)
    monkeypatch.setattr("explorer.core.results.get_model", lambda key, allow_download=True, **_: loaded)
    image = _picture()

    def controls(stage, block, head, view, lang, geometry="model"):
        return StageControls(image, loaded.entry.key, geometry, False, stage, block, head, view, lang)

    before = forward_count()
    out = tab.TAB.refresh(controls(None, None, None, {}, "en"))
    assert forward_count() == before + 1  # the hooks count this model's passes
    view = out["view"]
    assert (view["stage"], view["block"]) == (0, 1)  # the first stage with a real LDA block
    seen_titles = set()
    for lang in ("en", "zh"):
        outputs = [
            tab.TAB.refresh(controls(0, 1, HEAD_MEAN, view, lang)),
            tab.TAB.refresh(controls(0, 0, 1, view, lang)),  # block and head
            tab.TAB.change_stage(controls(2, 1, HEAD_MEAN, view, lang)),  # stage (fallback block)
            tab.TAB.change_stage(controls(3, 0, 0, view, lang)),  # a stage with one block: no LDA
            tab.TAB.click(controls(1, 1, HEAD_MEAN, view, lang), (300.0, 20.0)),
        ]
        for out in outputs:
            figs = _figures(out)
            assert len(figs) == 6
            for fig in figs:
                assert fig.layout.title.text
                seen_titles.add(fig.layout.title.text)
            assert out["predictions"] and len(out["predictions"]) == 5  # top-5 of the model's classes
            assert "|" in out["embedding"] and out["info"]  # embedding table, block info
        # the click went to the token under (300, 20) of the stage-1 picker
        grid = (8, 8)
        size = patch_picker_image(np.zeros((64, 64, 3), np.uint8), grid, None, PICKER_SIDE).size
        assert outputs[-1]["view"]["query"] == (int(20 * 8 / size[1]), int(300 * 8 / size[0]))
        assert outputs[2]["view"]["stage"] == 2
    assert any("SDA（短距离）" in title for title in seen_titles)
    assert any("LDA (long-distance)" in title for title in seen_titles)
    assert forward_count() == before + 1, "a stage/block/head/click change re-ran the model"


def test_render_native_geometry_with_padding(model):
    loaded = _loaded(model)
    result = analyze_image(loaded, _picture(90, 120), "native")
    assert result.cross.stage_grids[0] == (14, 19)  # 56×76 px: padded to 16×20 in stage 0
    view = tab.CrossFormerView(0, 1, None, (13, 18)).clamp(result)
    out = tab.render(loaded, result, view, "en")
    split = _figures(out)[-1]
    assert "padded to 16×20" in split.layout.title.text
    assert result.cross.block(0, 1).layout.is_padded


def test_groups_figure_marks_the_query_group(model):
    from explorer.lenses.crossformer import figures

    result = analyze_image(_loaded(model), _picture(), "model")
    for lang, text in (("en", "the query's group 6"), ("zh", "查询所在的第 6 组")):
        fig = figures.groups_figure(result, 0, 1, (5, 10), lang)  # LDA: (5 mod 4)·4 + 10 mod 4
        assert text in fig.layout.title.text and "group 0" not in fig.layout.title.text
        circles = next(tr for tr in fig.data if tr.type == "scatter")
        rows, cols = (np.asarray(circles.y) // 4).astype(int), (np.asarray(circles.x) // 4).astype(int)
        assert sorted(zip(rows, cols)) == [
            (r, c) for r in (1, 5, 9, 13) for c in (2, 6, 10, 14)]


@pytest.mark.parametrize("hw", [(64, 64), (224, 320), (333, 97), (1, 5)])
def test_picker_size_is_the_drawn_pickers_size(hw):
    from explorer.lenses.plotting import clicked_patch, picker_layout

    image = np.zeros((*hw, 3), np.uint8)
    drawn = patch_picker_image(image, (4, 5), None, 448)
    assert picker_layout(hw, 448)[0] == drawn.size  # a strip (1×5) is centred on a taller canvas
    # a click in the last pixel lands in the last patch, one in the first pixel in the first
    assert clicked_patch(image, (4, 5), (drawn.size[0] - 0.5, drawn.size[1] - 0.5)) == (3, 4)
    assert clicked_patch(image, (4, 5), (0, 0)) == (0, 0)
