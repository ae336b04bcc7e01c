"""The figures of the stage lenses are assembled as plain dicts (``PlainFigure``) and handed to
plotly unvalidated: pin that the grid equals ``make_subplots``'s, that magic underscores mean what
they mean in plotly, and that every figure a tab draws is valid plotly with a title."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from explorer.core.images import load_image
from explorer.core.zoo import REPO_ROOT
from explorer.lenses.plotting import PlainFigure, base_layout


def _axes(layout: dict) -> dict:
    return {k: v.get("domain") for k, v in layout.items() if k[1:5] == "axis"}


@pytest.mark.parametrize("rows, cols, spacing", [(1, 4, dict(horizontal_spacing=0.03)), (2, 3, {}),
                                                 (3, 2, dict(horizontal_spacing=0.07, vertical_spacing=0.16))])
def test_plain_grid_equals_make_subplots(rows, cols, spacing):
    titles = [f"panel {i}" for i in range(rows * cols)]
    plain = PlainFigure(rows, cols, subplot_titles=titles, **spacing).figure().to_plotly_json()["layout"]
    reference = make_subplots(rows=rows, cols=cols, subplot_titles=titles, **spacing).to_plotly_json()["layout"]
    assert _axes(plain).keys() == _axes(reference).keys()
    for name, domain in _axes(reference).items():
        assert np.allclose(_axes(plain)[name], domain), name
    for ours, theirs in zip(plain["annotations"], reference["annotations"]):
        assert ours["text"] == theirs["text"]
        assert np.allclose([ours["x"], ours["y"]], [theirs["x"], theirs["y"]])


def test_magic_underscores_and_subplot_references_match_plotly():
    plain = PlainFigure(1, 2)
    reference = make_subplots(rows=1, cols=2)
    for fig in (plain, reference):
        fig.add_trace(go.Heatmap(z=[[1, 2]], colorbar=dict(title_text="c")), row=1, col=2)
        fig.add_shape(type="rect", x0=0, x1=1, y0=0, y1=1, line_color="red", row=1, col=2)
        fig.update_yaxes(autorange="reversed", title_font_size=11, row=1, col=2)
        base_layout(fig, "title<br>two lines", "x", "y", height=300)
    ours, theirs = plain.figure().to_plotly_json(), reference.to_plotly_json()
    for part in ("title", "margin", "xaxis", "xaxis2", "yaxis2", "shapes"):
        assert ours["layout"][part] == theirs["layout"][part], part
    assert ours["data"][0]["colorbar"] == theirs["data"][0]["colorbar"]
    assert (ours["data"][0]["xaxis"], ours["data"][0]["yaxis"]) == ("x2", "y2")


@pytest.mark.parametrize("lens", ["swin", "crossformer", "twins"])
def test_every_stage_lens_figure_is_valid_plotly_with_a_title(lens):
    from explorer.lenses.registry import get_lens

    tab = get_lens(lens).tab.TAB
    image = load_image(REPO_ROOT / "assets" / "examples" / "chelsea.jpg")
    loaded, result = tab.analyse(image, f"demo_{lens}", "model", False)
    for lang in ("en", "zh"):
        for stage in range(len(tab.grids(result))):
            for head in (None, 0):
                view = tab.view(stage=stage, head=head).clamp(result)
                figures = [v for v in tab.render(loaded, result, view, lang).values() if isinstance(v, go.Figure)]
                assert len(figures) >= 5
                for fig in figures:
                    go.Figure(fig.to_plotly_json())  # raises on any invalid property
                    assert fig.layout.title.text


def test_ticks_mark_the_uniform_weight_and_constant_maps_are_found():
    from explorer.lenses.plotting import constant_value, ticks_with_mark

    ticks = ticks_with_mark(0.0, 1.0, 1 / 197, "1/197 uniform")
    assert ticks["tickvals"][:2] == [1 / 197, 0.25] and ticks["tickvals"][-1] == 1.0  # 0 gives way to the mark
    assert ticks["ticktext"][ticks["tickvals"].index(1 / 197)] == "1/197 uniform"
    # a round tick too close to the mark gives way to it; a mark out of range is left out
    assert 0.2 not in ticks_with_mark(0.0, 1.0, 0.21, "m")["tickvals"]
    assert "m" not in ticks_with_mark(0.3, 0.9, 0.01, "m")["ticktext"]
    assert constant_value(np.full((3, 3), 0.01291)) == pytest.approx(0.01291)
    assert constant_value(np.array([[np.nan, 2.0], [2.0, 2.0]])) == 2.0
    assert constant_value(np.eye(3)) is None


def test_attention_maps_on_a_fixed_range_mark_one_over_n_and_ids_get_whole_number_ticks():
    from explorer.lenses.attention import figures
    from explorer.lenses.attention.tab import analysis_for
    from explorer.lenses.swin import figures as swin_figures
    from explorer.lenses.swin.tab import analysis_for as swin_analysis

    image = load_image(REPO_ROOT / "assets" / "examples" / "chelsea.jpg")
    _, a = analysis_for(image, "demo_vit", "model", False)
    n = a.attention.shape[-1]
    for fixed, span in ((True, (0.0, 1.0)), (False, None)):
        for fig in (figures.query_attention_figure(a, 2, None, 0, fixed=fixed),
                    figures.attention_matrix_figure(a, 2, 0, fixed=fixed)):
            bar, heat = fig.data[0].colorbar, fig.data[0]
            assert f"1/{n} uniform" in bar.ticktext or not fixed
            if span:
                assert (heat.zmin, heat.zmax) == span
    zh = figures.rollout_figure(a, "mean", 0, lang="zh", fixed=True)
    assert f"1/{n} 均匀" in zh.data[0].colorbar.ticktext
    _, s = swin_analysis(image, "demo_swin", "model", False)
    windows = swin_figures.windows_figure(s.swin, s.model_image, 0, 1, (1, 1))
    n_windows = s.swin.block(0, 1).geometry.num_windows
    assert list(windows.data[0].colorbar.tickvals) == list(range(n_windows))
    assert (windows.data[0].zmin, windows.data[0].zmax) == (-0.5, n_windows - 0.5)


def test_a_flat_panel_says_its_value_and_an_empty_mask_bar_shows_zero_only():
    from explorer.lenses.swin.figures import logit_split_panels

    n = 4
    labels = [str(i) for i in range(n)]
    fig = logit_split_panels(np.random.default_rng(0).normal(size=(n, n)), np.full((n, n), 0.01291),
                             np.zeros((n, n)), np.full((n, n), 0.25), labels, "split", "en", mask_min=-1e6)
    titles = [a.text for a in fig.layout.annotations]
    assert "constant: 0.01291 everywhere" in titles[1] and "constant: 0 everywhere" in titles[2]
    assert "constant" not in titles[0]
    mask = fig.data[2]
    assert (mask.zmin, mask.zmax) == (-1.0, 0) and list(mask.colorbar.ticktext) == ["", "0"]
    padded = np.zeros((n, n))
    padded[:, -1] = -1e6
    fig = logit_split_panels(np.zeros((n, n)), np.zeros((n, n)), padded, np.full((n, n), 0.25), labels,
                             "split", "zh", mask_min=-1e6)
    assert fig.data[2].zmin == -1e6 and list(fig.data[2].colorbar.ticktext) == ["-1e+06", "0"]
    assert "常数" in fig.layout.annotations[0].text


def test_a_panorama_picker_stays_clickable_below_the_label():
    """A 4000×300 photo kept at its aspect ratio is a 2×27 token strip: drawn alone, 448×33 px and
    hidden behind the image label. It is centred on a taller canvas, and clicks map through it."""
    from explorer.lenses.plotting import PICKER_MIN_HEIGHT, clicked_patch, patch_picker_image, picker_layout

    strip = np.zeros((32, 432, 3), np.uint8)
    (width, height), (ox, oy) = picker_layout(strip.shape[:2])
    assert (width, height) == (448, PICKER_MIN_HEIGHT) and ox == 0 and oy >= 40  # clear of the label
    picture = np.asarray(patch_picker_image(strip, (2, 27), (1, 13)))
    assert picture.shape[:2] == (height, width) and (picture[:oy] == 236).all()  # the margin is plain
    cell_w, cell_h = 448 / 27, 33 / 2
    assert clicked_patch(strip, (2, 27), (13.5 * cell_w, oy + 1.5 * cell_h)) == (1, 13)
    assert clicked_patch(strip, (2, 27), (2, 3)) == (0, 0)  # the margin: the nearest patch
    square = np.zeros((224, 224, 3), np.uint8)
    assert picker_layout(square.shape[:2]) == ((448, 448), (0, 0))  # ordinary pictures: unchanged


def test_a_panoramas_map_shrinks_to_its_strip_and_its_short_axis_gets_its_two_ends():
    from explorer.lenses.plotting import overlay

    def draw(h, w, rows, cols):
        fig = overlay(np.zeros((h, w, 3), np.uint8), np.random.rand(rows, cols), (h // rows, w // cols),
                      title="t", colorbar_title="c", height=460).figure()
        return fig.layout

    square, strip, tower = draw(224, 224, 28, 28), draw(16, 216, 2, 27), draw(216, 16, 27, 2)
    assert square.height == 460 and square.yaxis.tickvals is None and square.xaxis.tickvals is None
    assert strip.height == 220 + 124 and tuple(strip.yaxis.tickvals) == (0, 16) and strip.xaxis.tickvals is None
    assert tower.height == 460 and tuple(tower.xaxis.tickvals) == (0, 16) and tower.yaxis.tickvals is None


def test_a_wrapped_title_and_two_line_panel_titles_get_their_own_room_above_the_panels():
    one = base_layout(PlainFigure(1, 2, subplot_titles=["a", "b"]), "short", "", "", height=380).figure()
    long_title = " · ".join(["a clause of the title"] * 6)
    wrapped = base_layout(PlainFigure(1, 2, subplot_titles=["a<br>b", "c"]), long_title, "", "", height=380).figure()
    lines = wrapped.layout.title.text.count("<br>") + 1
    assert lines >= 3
    # each further title line and panel-title line adds its height: the panels keep theirs
    extra = wrapped.layout.margin.t - one.layout.margin.t
    assert extra == 24 * (lines - 1) + 20 and wrapped.layout.height - one.layout.height == extra
    assert wrapped.layout.title.yanchor == "top" and wrapped.layout.title.yref == "container"


@pytest.mark.parametrize("title", [
    "Layer 5 · mean of 3 heads · attention of CLS over all 197 tokens of the image, and then some more words",
    "第 0 阶段 · 块 1 · LDA（长距离） · 第 0 组（16 个 token）· 2 个头的平均：logit = 内容 + 偏置 + 掩码 → softmax",
    "a_single_identifier_far_longer_than_any_line_of_a_title_can_be_at_all",
    "first line\nsecond line · with a clause<br>third",
])
def test_wrap_title_keeps_every_character_and_no_line_is_too_wide(title):
    from explorer.lenses.plotting import TITLE_WIDTH, display_width, wrap_title

    wrapped = wrap_title(title)
    lines = wrapped.split("<br>")
    assert all(display_width(line.rstrip()) <= TITLE_WIDTH for line in lines), lines
    assert "".join(lines).replace(" ", "") == title.replace("\n", "").replace("<br>", "").replace(" ", "")
    assert "\n" not in wrapped
