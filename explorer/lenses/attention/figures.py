"""Figures of the attention lens (plotly for the page and HTML export, PIL for PNG export).

Each function turns an ``AttentionAnalysis`` plus the user's choices into one figure;
nothing here runs a model, so redrawing after a slider change is cheap.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.lenses.attention.compute import AttentionAnalysis
from explorer.lenses.plotting import (DIVERGING_SCALE, PlainFigure, base_layout, colorbar, discrete_scale, id_ticks, overlay_figure,
                                      overlay_png, ticks_with_mark)
from explorer.ui.i18n import predictions_label, t


def head_name(head: int | None, num_heads: int, lang: str) -> str:
    return t("mean_of_heads", lang, n=num_heads) if head is None else t("head_n", lang, n=head)


def _query_name(analysis: AttentionAnalysis, query: int) -> str:
    return analysis.token_name(query)


def weight_range(values: np.ndarray, fixed: bool) -> tuple[float, float]:
    """The colour range of an attention map: 0–1 (maps of every layer compare), or its own."""
    if fixed:
        return 0.0, 1.0
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)


def uniform_ticks(analysis: AttentionAnalysis, values: np.ndarray, fixed: bool, lang: str) -> dict:
    """Colour-bar ticks with the uniform weight 1/N marked: above it a token gets more than an
    equal share of the query's attention (each row of N weights sums to 1)."""
    n = analysis.attention.shape[-1]
    lo, hi = weight_range(values, fixed)
    return dict(zmin=lo, zmax=hi, ticks=ticks_with_mark(lo, hi, 1.0 / n, t("uniform_mark", lang, n=n)))


def _named(title: str, model_name: str | None) -> str:
    """A figure's title led by its model's name, when two models stand side by side."""
    return title if model_name is None else f"{model_name} · {title}"


def query_attention_figure(analysis: AttentionAnalysis, layer: int, head: int | None, query: int,
                           scale: str = "Viridis", lang: str = "en", fixed: bool = False,
                           model_name: str | None = None) -> go.Figure:
    values = analysis.query_map(layer, head, query)
    title = _named(t("fig_query_attention", lang, layer=layer, head=head_name(head, analysis.num_heads, lang),
                     query=_query_name(analysis, query)), model_name)
    return overlay_figure(analysis.model_image, values, analysis.patch_size, title=title,
                          colorbar_title=t("attention_weight", lang), colorscale=scale,
                          token_offset=analysis.num_prefix_tokens,
                          highlight=analysis.patch_of_token(query),
                          x_title=t("x_pixels", lang), y_title=t("y_pixels", lang),
                          **uniform_ticks(analysis, values, fixed, lang))


def rollout_figure(analysis: AttentionAnalysis, fusion: str, query: int, scale: str = "Viridis",
                   lang: str = "en", fixed: bool = False, model_name: str | None = None) -> go.Figure:
    title = _named(t("fig_rollout", lang, fusion=t(f"fusion_{fusion}", lang), query=_query_name(analysis, query),
                     layers=analysis.num_layers), model_name)
    values = analysis.rollout_map(fusion, query)
    return overlay_figure(analysis.model_image, values, analysis.patch_size,
                          title=title, colorbar_title=t("rollout_weight", lang), colorscale=scale,
                          token_offset=analysis.num_prefix_tokens,
                          highlight=analysis.patch_of_token(query), value_name="rollout",
                          x_title=t("x_pixels", lang), y_title=t("y_pixels", lang),
                          **uniform_ticks(analysis, values, fixed, lang))


def token_labels(analysis: AttentionAnalysis) -> list[str]:
    return [f"#{i} {analysis.token_name(i)}" for i in range(analysis.attention.shape[-1])]


def attention_matrix_figure(analysis: AttentionAnalysis, layer: int, head: int | None,
                            scale: str = "Viridis", lang: str = "en", fixed: bool = False) -> go.Figure:
    """The full (N, N) softmax matrix of one layer/head: row = query token, column = key."""
    att = analysis.attention[layer]
    matrix = att.mean(0) if head is None else att[head]
    labels = token_labels(analysis)
    ticks = uniform_ticks(analysis, matrix, fixed, lang)
    fig = PlainFigure().add_trace(dict(
        type="heatmap", z=np.round(matrix, 5), x=labels, y=labels, colorscale=scale,
        zmin=ticks["zmin"], zmax=ticks["zmax"], colorbar={**colorbar(t("attention_weight", lang)), **ticks["ticks"]},
        hovertemplate=t("hover_matrix", lang) + "<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    title = t("fig_matrix", lang, layer=layer, head=head_name(head, analysis.num_heads, lang),
              n=matrix.shape[0])
    return base_layout(fig, title, t("key_token", lang), t("query_token", lang)).figure()


def mean_distance_figure(analysis: AttentionAnalysis, lang: str = "en") -> go.Figure:
    """ViT paper Fig. 7 (right): one dot per head, depth on x, mean distance in pixels on y."""
    layers, heads = analysis.mean_distance.shape
    depth = np.repeat(np.arange(layers), heads)
    head = np.tile(np.arange(heads), layers)
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=depth, y=analysis.mean_distance.ravel(), mode="markers", name=t("one_head", lang),
        # heads are ids: one flat colour each, whole numbers on the bar
        marker=dict(size=10, color=head, colorscale=discrete_scale(heads), cmin=-0.5, cmax=heads - 0.5,
                    showscale=True, line=dict(width=0.5, color="white"),
                    colorbar=dict(colorbar(t("head_index", lang)), tickvals=id_ticks(heads))),
        customdata=head, hovertemplate=t("hover_distance", lang) + "<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=np.arange(layers), y=analysis.mean_distance.mean(1), mode="lines",
        line=dict(color="#444", dash="dash"), name=t("mean_over_heads", lang),
        hovertemplate=t("hover_distance_mean", lang) + "<extra></extra>",
    ))
    rows, cols = analysis.grid
    ph, pw = analysis.patch_size
    fig.update_layout(legend=dict(orientation="h", y=-0.22))
    fig.update_xaxes(dtick=1)
    title = t("fig_distance", lang, h=rows * ph, w=cols * pw)
    return base_layout(fig, title, t("layer_depth", lang), t("distance_pixels", lang))


def position_similarity_figure(analysis: AttentionAnalysis, lang: str = "en") -> go.Figure | None:
    """ViT paper Fig. 7 (left): tile (r, c) shows the cosine similarity between the position
    embedding of patch (r, c) and those of all patches."""
    sim = analysis.pos_similarity
    if sim is None:
        return None
    rows, cols = sim.shape[:2]
    mosaic = sim.transpose(0, 2, 1, 3).reshape(rows * rows, cols * cols)
    x = [f"{t('query_col', lang)} {a} · {t('key_col', lang)} {b}" for a in range(cols) for b in range(cols)]
    y = [f"{t('query_row', lang)} {a} · {t('key_row', lang)} {b}" for a in range(rows) for b in range(rows)]
    fig = go.Figure(go.Heatmap(
        z=np.round(mosaic, 4), x=x, y=y, colorscale=DIVERGING_SCALE, zmin=-1, zmax=1,
        colorbar=colorbar(t("cosine_similarity", lang)),
        hovertemplate="%{y}<br>%{x}<br>cos = %{z:.3f}<extra></extra>",
    ))
    line = dict(color="white", width=2)
    tile_borders = (
        [dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=r * rows - 0.5, y1=r * rows - 0.5,
              line=line) for r in range(1, rows)]
        + [dict(type="line", yref="paper", y0=0, y1=1, xref="x", x0=c * cols - 0.5, x1=c * cols - 0.5,
                line=line) for c in range(1, cols)])
    fig.update_layout(shapes=tile_borders)
    fig.update_yaxes(autorange="reversed", showticklabels=False, scaleanchor="x")
    fig.update_xaxes(showticklabels=False)
    return base_layout(fig, t("fig_pos_similarity", lang, rows=rows, cols=cols),
                       t("pos_x_axis", lang), t("pos_y_axis", lang), height=560)


def predictions_dict(analysis: AttentionAnalysis, lang: str = "en") -> dict[str, float]:
    return predictions_label(analysis.predictions, lang)


def export_pngs(analysis: AttentionAnalysis, layer: int, head: int | None, query: int,
                fusion: str = "mean", scale: str = "Viridis", lang: str = "en") -> dict:
    """Static pictures of the image-space maps, for ``python -m explorer export``."""
    heads = head_name(head, analysis.num_heads, lang)
    return {
        "attention": overlay_png(analysis.model_image, analysis.query_map(layer, head, query),
                                 t("fig_query_attention", lang, layer=layer, head=heads,
                                   query=_query_name(analysis, query)),
                                 t("attention_weight", lang), scale),
        "rollout": overlay_png(analysis.model_image, analysis.rollout_map(fusion, query),
                               t("fig_rollout", lang, fusion=t(f"fusion_{fusion}", lang),
                                 query=_query_name(analysis, query), layers=analysis.num_layers),
                               t("rollout_weight", lang), scale),
    }
