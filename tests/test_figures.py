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
