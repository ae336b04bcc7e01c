"""Figures of the Twins lens: a stage's LSA windows and GSA key cells on the image, a clicked
token's LSA attention inside its window and its GSA attention over the sub-sampled keys, and
what each stage's PEG adds (bar chart per stage and a per-token map)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.lenses.plotting import (PlainFigure, base_layout, colorbar, discrete_scale, id_ticks, image_data_uri,
                                      message_figure, overlay, overlay_figure)
from explorer.lenses.twins.compute import TwinsAnalysis, TwinsBlock
from explorer.ui.i18n import t

__all__ = ["layout_figure", "lsa_attention_figure", "gsa_attention_figure", "peg_bars_figure",
           "peg_map_figure", "message_figure", "head_name"]

QUERY_COLOR = "#ff2d55"
KEY_LINE = "rgba(255,255,255,0.95)"


def head_name(heads: int, head: int | None, lang: str) -> str:
    return t("mean_of_heads", lang, n=heads) if head is None else t("head_n", lang, n=head)


def _query_box(fig: PlainFigure, query: tuple[int, int], px: int) -> None:
    r, c = query
    fig.add_shape(type="rect", x0=c * px, x1=(c + 1) * px, y0=r * px, y1=(r + 1) * px,
                  line=dict(color=QUERY_COLOR, width=3))


def _key_cells(fig: PlainFigure, gsa: TwinsBlock, px: int, width: int, height: int) -> None:
    """Dashed lines around GSA's key cells: each is sr×sr tokens, one conv output."""
    cell = gsa.sr * px
    kh, kw = gsa.key_grid
    for i in range(kh + 1):
        fig.add_shape(type="line", x0=0, x1=kw * cell, y0=i * cell, y1=i * cell,
                      line=dict(color=KEY_LINE, width=2, dash="dash"))
    for j in range(kw + 1):
        fig.add_shape(type="line", x0=j * cell, x1=j * cell, y0=0, y1=kh * cell,
                      line=dict(color=KEY_LINE, width=2, dash="dash"))


def layout_figure(a: TwinsAnalysis, image: np.ndarray, stage: int, pair: tuple[TwinsBlock | None, TwinsBlock | None],
                  query: tuple[int, int], lang: str = "en") -> go.Figure:
    """The stage's token map on the image: LSA windows as coloured tiles (padding shown as
    the part of a window outside the image) and GSA key cells as dashed squares; the query
    is boxed. Hover gives token, window and key cell."""
    lsa, gsa = pair
    px, (h, w) = a.token_px[stage], a.stage_grids[stage]
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    if lsa is not None:
        window = (rows // lsa.ws) * lsa.windows[1] + cols // lsa.ws
        n_windows = lsa.windows[0] * lsa.windows[1]
    else:
        window, n_windows = np.zeros((h, w), int), 1
    if gsa is not None and gsa.sr > 1:
        kh, kw = gsa.key_grid
        key_r, key_c = rows // gsa.sr, cols // gsa.sr
        key = np.where((key_r < kh) & (key_c < kw), key_r * kw + key_c, -1)
    else:
        key = rows * w + cols  # sr = 1: every token is its own key
    custom = np.stack([rows, cols, window, key], axis=-1)
    # tiles coloured by LSA window; a model without LSA (PCPVT) by GSA key cell instead
    tiles, n_tiles, tile_name = ((window, n_windows, "tw_window_id") if lsa is not None
                                 else (key, int(key.max()) + 1, "tw_key_id"))
    fig = PlainFigure().add_trace(dict(
        type="heatmap", z=tiles, x=(np.arange(w) + 0.5) * px, y=(np.arange(h) + 0.5) * px, customdata=custom,
        colorscale=discrete_scale(n_tiles), zmin=-0.5, zmax=n_tiles - 0.5, opacity=0.35,
        colorbar=dict(colorbar(t(tile_name, lang)), tickvals=id_ticks(n_tiles)),
        hovertemplate=t("hover_tw_layout", lang) + "<extra></extra>"))
    height_px, width_px = image.shape[:2]
    fig.add_layout_image(dict(source=image_data_uri(image), x=0, y=0,
                              sizex=width_px, sizey=height_px, sizing="stretch", layer="below"))
    parts = []
    if lsa is not None:
        ws_px = lsa.ws * px
        for i in range(lsa.windows[0] + 1):
            fig.add_shape(type="line", x0=0, x1=lsa.windows[1] * ws_px, y0=i * ws_px, y1=i * ws_px,
                          line=dict(color="black", width=2))
        for j in range(lsa.windows[1] + 1):
            fig.add_shape(type="line", x0=j * ws_px, x1=j * ws_px, y0=0, y1=lsa.windows[0] * ws_px,
                          line=dict(color="black", width=2))
        parts.append(t("tw_layout_lsa", lang, n=n_windows, ws=lsa.ws, px=lsa.ws * px))
        if lsa.is_padded:
            parts.append(t("tw_layout_padded", lang, hp=lsa.padded[0], wp=lsa.padded[1]))
    if gsa is not None:
        if gsa.sr > 1:
            _key_cells(fig, gsa, px, width_px, height_px)
            parts.append(t("tw_layout_gsa", lang, kh=gsa.key_grid[0], kw=gsa.key_grid[1], sr=gsa.sr,
                           px=gsa.sr * px))
        else:
            parts.append(t("tw_layout_gsa_full", lang, n=h * w))
    _query_box(fig, query, px)
    title = t("fig_tw_layout", lang, stage=stage, h=h, w=w, px=px) + "<br>" + " · ".join(parts)
    extent_w = max(width_px, (lsa.windows[1] * lsa.ws * px) if lsa is not None else 0)
    extent_h = max(height_px, (lsa.windows[0] * lsa.ws * px) if lsa is not None else 0)
    fig.update_xaxes(range=[0, extent_w], showgrid=False, constrain="domain")
    fig.update_yaxes(range=[extent_h, 0], showgrid=False, scaleanchor="x", constrain="domain")
    return base_layout(fig, title, t("x_px", lang), t("y_px", lang), height=500).figure()


def lsa_attention_figure(a: TwinsAnalysis, image: np.ndarray, block: TwinsBlock, head: int | None,
                         query: tuple[int, int], lang: str = "en") -> go.Figure:
    """The query's LSA weights over the members of its window (blank elsewhere)."""
    px = a.token_px[block.stage]
    values = block.query_attention(head, *query)
    window, slot = block.window_of(*query)
    title = t("fig_tw_lsa", lang, block=block.block, r=query[0], c=query[1], window=window,
              ws=block.ws, head=head_name(block.heads, head, lang))
    if block.is_padded:
        title += t("cf_pad_weight", lang, w=block.padding_weight(head, *query))
    fig = overlay(image, values, (px, px), title=title, colorbar_title=t("attention_weight", lang),
                  token_offset=None, value_name=t("attention_weight", lang), highlight=query,
                  opacity=0.8, height=480, x_title=t("x_px", lang), y_title=t("y_px", lang))
    fig.update_traces(hoverongaps=False, selector=dict(type="heatmap"))
    return fig.figure()


def gsa_attention_figure(a: TwinsAnalysis, image: np.ndarray, block: TwinsBlock, head: int | None,
                         query: tuple[int, int], lang: str = "en") -> go.Figure:
    """The query's GSA weights over the sub-sampled keys: one cell per key, sr×sr tokens."""
    px = a.token_px[block.stage]
    cell = block.sr * px
    values = block.query_attention(head, *query)
    title = t("fig_tw_gsa", lang, block=block.block, r=query[0], c=query[1], kh=block.key_grid[0],
              kw=block.key_grid[1], sr=block.sr, cell=cell, head=head_name(block.heads, head, lang))
    fig = overlay(image, values, (cell, cell), title=title, colorbar_title=t("attention_weight", lang),
                  token_offset=None, value_name=t("attention_weight", lang), opacity=0.75,
                  height=480, x_title=t("x_px", lang), y_title=t("y_px", lang))
    fig.update_traces(hovertemplate=t("hover_tw_key", lang) + "<extra></extra>", selector=dict(type="heatmap"))
    _query_box(fig, query, px)
    return fig.figure()


def peg_bars_figure(a: TwinsAnalysis, lang: str = "en") -> go.Figure:
    """Per stage: mean ‖DWConv(x)‖ / mean ‖x‖ — how much the PEG changes the stage's tokens."""
    stages = [p.stage for p in a.peg]
    rel = [p.relative for p in a.peg]
    custom = [[p.grid[0], p.grid[1], float(p.added_norm.mean()), float(p.input_norm.mean())] for p in a.peg]
    fig = PlainFigure().add_trace(dict(type="bar", x=stages, y=rel, customdata=custom,
                                       marker=dict(color=rel, colorscale="Viridis",
                                                   colorbar=colorbar(t("tw_peg_ratio_short", lang))),
                                       hovertemplate=t("hover_tw_peg", lang) + "<extra></extra>"))
    fig.update_xaxes(tickmode="array", tickvals=stages)
    return base_layout(fig, t("fig_tw_peg", lang), t("shape_stage", lang), t("tw_peg_ratio", lang),
                       height=380).figure()


def peg_map_figure(a: TwinsAnalysis, image: np.ndarray, stage: int, lang: str = "en") -> go.Figure:
    """Per token of one stage: ‖DWConv(x)‖, the vector the PEG adds there."""
    peg = next((p for p in a.peg if p.stage == stage), None)
    if peg is None:
        return message_figure(t("tw_no_peg", lang, stage=stage))
    px = a.token_px[stage]
    title = t("fig_tw_peg_map", lang, stage=stage, rel=peg.relative)
    return overlay_figure(image, peg.added_norm, (px, px), title=title, colorbar_title="‖DWConv(x)‖",
                          token_offset=0, value_name="‖DWConv(x)‖", value_format=".3f", opacity=0.7,
                          height=440, x_title=t("x_px", lang), y_title=t("y_px", lang))
