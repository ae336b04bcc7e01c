"""Figures of the position-bias lens: RPB tables per head as (2M−1)×(2M−1) heatmaps over
(Δh, Δw), CrossFormer's DPB MLP at any group size G′, the gathered (M², M²) bias, the
relative_position_index, and CrossFormer's SDA/LDA groups drawn on the image.

Signed biases use a diverging scale centred on 0; "all heads" draws small multiples that
share one colour bar."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from explorer.lenses.bias.compute import BlockBias, pair_offsets
from explorer.lenses.plotting import (DIVERGING_SCALE, FONT_SIZE, PlainFigure, base_layout, colorbar, constant_value,
                                      message_figure, overlay)

__all__ = ["head_name", "table_figure", "dpb_figure", "gathered_figure", "index_figure", "groups_figure",
           "groups_panel", "message_figure"]
from explorer.models.crossformer import GroupLayout
from explorer.ui.i18n import t


def head_name(heads: int, head: int | None, lang: str) -> str:
    return t("bias_all_heads", lang, n=heads) if head is None else t("head_n", lang, n=head)


def _kind_name(kind: str, lang: str) -> str:
    return {"SDA": t("bias_sda", lang), "LDA": t("bias_lda", lang),
            "W-MSA": "W-MSA", "SW-MSA": "SW-MSA"}.get(kind, kind)


def _grid(n: int) -> tuple[int, int]:
    cols = n if n <= 4 else (4 if n <= 8 else 6)
    return math.ceil(n / cols), cols


def _small_multiples(panels: list[tuple[str, np.ndarray, np.ndarray]], x, y, hover: str, *,
                     title: str, x_title: str, y_title: str, colorbar_title: str,
                     colorscale=DIVERGING_SCALE, zrange: tuple[float, float] | None = None,
                     categorical: bool = False, single_height: int = 520, lang: str = "en") -> PlainFigure:
    """One heatmap per (label, z, customdata) panel in a grid, all on one shared colour axis.

    ``zrange`` None: symmetric around 0 over every panel (signed biases). The grid is laid
    out by hand in one layout update: ``make_subplots`` plus per-panel ``update_*axes`` take
    about a second for 24 heads."""
    n = len(panels)
    rows, cols = _grid(n)
    if zrange is None:
        top = max(float(np.nanmax(np.abs(z))) if z.size else 0.0 for _, z, _ in panels) or 1e-6
        zrange = (-top, top)
    height = single_height if n == 1 else max(420, 150 + rows * (810 // cols + 40))
    gap_x = 0.04 if cols > 1 else 0.0
    gap_y = (0.14 / rows + 0.05) if rows > 1 else 0.0
    width, cell = (1 - gap_x * (cols - 1)) / cols, (1 - gap_y * (rows - 1)) / rows
    ticks = len(x) <= 16 if categorical else True
    dtick = {} if categorical or len(x) > 15 else {"dtick": max(1, (len(x) - 1) // 6)}
    traces, layout, notes = [], {}, []
    for k, (label, z, custom) in enumerate(panels):
        r, c = divmod(k, cols)
        same = constant_value(z)  # one flat colour looks broken: say it is one value
        if same is not None and n > 1:
            label = f"{label} · {t('constant_panel', lang, v=same)}"
        elif same is not None:
            title = f"{title}<br>{t('constant_panel', lang, v=same)}"
        suffix = "" if k == 0 else str(k + 1)
        x0, y1 = c * (width + gap_x), 1 - r * (cell + gap_y)
        traces.append(dict(type="heatmap", z=z, x=x, y=y, customdata=custom, coloraxis="coloraxis",
                           xaxis=f"x{suffix}", yaxis=f"y{suffix}",
                           hovertemplate=(f"{label}<br>" if n > 1 else "") + hover + "<extra></extra>"))
        # Several panels: each one's name is its x-axis title (it stays under the panel
        # however plotly shrinks the domain to keep cells square); the axis names go once.
        layout[f"xaxis{suffix}"] = dict(
            domain=[max(0.0, x0), min(1.0, x0 + width)], anchor=f"y{suffix}", showgrid=False,
            constrain="domain", showticklabels=ticks, automargin=True,
            title=dict(text=x_title if n == 1 else label, standoff=4 if n > 1 else None,
                       font=dict(size=FONT_SIZE if n == 1 else FONT_SIZE - 2)), **dtick)
        layout[f"yaxis{suffix}"] = dict(
            domain=[max(0.0, y1 - cell), min(1.0, y1)], anchor=f"x{suffix}", autorange="reversed",
            scaleanchor=f"x{suffix}", constrain="domain", showgrid=False, automargin=True,
            showticklabels=ticks and c == 0, title=dict(text=y_title if n == 1 else ""), **dtick)
    if n > 1:  # one axis title for the whole grid: per-panel ones overlap
        # below and left of the tick labels: slot names ("15: (3,3)") are ~80 px long, offsets short
        clear = 100 if categorical and ticks else 40
        notes.append(dict(text=x_title, x=0.5, y=0, xref="paper", yref="paper", xanchor="center",
                           yanchor="top", yshift=-clear + 4, showarrow=False))
        notes.append(dict(text=y_title, x=0, y=0.5, xref="paper", yref="paper", xanchor="right",
                           yanchor="middle", xshift=-clear, textangle=-90, showarrow=False))
    fig = PlainFigure()
    for trace in traces:
        fig.add_trace(trace)
    fig = base_layout(fig, title, "", "", height=height)
    if n > 1:
        fig.update_layout(margin=dict(b=150, l=130) if categorical and ticks else dict(b=90))
    fig.update_layout(annotations=notes, **layout,
                      coloraxis=dict(colorscale=colorscale, cmin=zrange[0], cmax=zrange[1],
                                     colorbar=colorbar(colorbar_title)))
    return fig


def _heads(item: BlockBias, head: int | None) -> list[int]:
    return list(range(item.heads)) if head is None else [head]


def _offset_panels(item: BlockBias, grids: np.ndarray, head: int | None, lang: str):
    """Panels of (heads, 2M−1, 2M−1) grids with the table row under each cell."""
    span_h, span_w = grids.shape[1:]
    rows = np.arange(span_h * span_w).reshape(span_h, span_w)
    return [(t("head_n", lang, n=h), grids[h], rows) for h in _heads(item, head)]


def table_figure(item: BlockBias, head: int | None, lang: str = "en") -> go.Figure:
    """The RPB table of one block: per head a (2Mh−1)×(2Mw−1) map over (Δh, Δw); for a DPB
    CrossFormer it is the table ``dpb_to_rpb`` made."""
    mh, mw = item.window
    fields = dict(stage=item.stage, block=item.block, kind=_kind_name(item.kind, lang),
                  head=head_name(item.heads, head, lang))
    if item.source == "dpb":
        title = t("fig_bias_table_converted", lang, g=item.group_size, **fields)
    elif item.source == "cpb":
        title = t("fig_bias_table_cpb", lang, m=f"{mh}×{mw}", rows=item.table.shape[0], **fields)
    else:
        title = t("fig_bias_table", lang, rows=item.table.shape[0], mh=mh - 1, **fields)
    return _small_multiples(
        _offset_panels(item, item.head_tables(), head, lang), np.arange(1 - mw, mw),
        np.arange(1 - mh, mh), t("hover_bias_table", lang), title=title,
        x_title=t("bias_dw", lang), y_title=t("bias_dh", lang), colorbar_title=t("bias_value", lang), lang=lang).figure()


def dpb_figure(item: BlockBias, group_size: int, head: int | None, lang: str = "en") -> go.Figure:
    """The DPB MLP of one block evaluated at G′ = ``group_size``: ((2G′−1)², heads) as
    (2G′−1)×(2G′−1) maps. Beyond the trained G a dashed box marks the offsets it was trained
    on; outside it the MLP extrapolates."""
    g = item.group_size
    if group_size == g:
        note = t("bias_dpb_trained", lang)
    elif group_size > g:
        note = t("bias_dpb_extrapolated", lang, g=g)
    else:
        note = t("bias_dpb_inside", lang, g=g)
    side = 2 * group_size - 1
    title = t("fig_bias_dpb", lang, gp=group_size, stage=item.stage, block=item.block,
              head=head_name(item.heads, head, lang), rows=side * side, note=note)
    span = np.arange(1 - group_size, group_size)
    fig = _small_multiples(
        _offset_panels(item, item.dpb_grid(group_size), head, lang), span, span,
        t("hover_bias_table", lang), title=title, x_title=t("bias_dw", lang),
        y_title=t("bias_dh", lang), colorbar_title=t("bias_value", lang), lang=lang)
    if group_size > g:
        suffixes = ["" if k == 0 else str(k + 1) for k in range(len(_heads(item, head)))]
        fig.update_layout(shapes=[dict(type="rect", xref=f"x{s}", yref=f"y{s}", x0=-(g - 0.5),
                                       x1=g - 0.5, y0=-(g - 0.5), y1=g - 0.5,
                                       line=dict(color="black", width=2, dash="dash"))
                                  for s in suffixes])
    return fig.figure()


def _slot_labels(window: tuple[int, int]) -> list[str]:
    mh, mw = window
    return [f"{r * mw + c}: ({r},{c})" for r in range(mh) for c in range(mw)]


def gathered_figure(item: BlockBias, head: int | None, lang: str = "en") -> go.Figure:
    """The (M², M²) bias B[h, i, j] = table[index(i, j), h] added to the logits."""
    labels = _slot_labels(item.window)
    dh, dw = pair_offsets(item.window)
    custom = np.stack([dh, dw, item.index], axis=-1)
    gathered = item.gathered()
    panels = [(t("head_n", lang, n=h), gathered[h], custom) for h in _heads(item, head)]
    title = t("fig_bias_gathered", lang, n=item.area, stage=item.stage, block=item.block,
              head=head_name(item.heads, head, lang))
    return _small_multiples(panels, labels, labels, t("hover_bias_gathered", lang), title=title,
                            x_title=t("key_slot", lang), y_title=t("query_slot", lang),
                            colorbar_title=t("bias_value", lang), lang=lang, categorical=True).figure()


def index_figure(item: BlockBias, lang: str = "en") -> go.Figure:
    """relative_position_index: which table row query slot i and key slot j read."""
    mh, mw = item.window
    labels = _slot_labels(item.window)
    dh, dw = pair_offsets(item.window)
    rows = item.table.shape[0]
    title = t("fig_bias_index", lang, n=item.area, a=mh - 1, b=2 * mw - 1, c=mw - 1)
    return _small_multiples([("", item.index, np.stack([dh, dw], axis=-1))], labels, labels,
                            t("hover_bias_index", lang), title=title, x_title=t("key_slot", lang),
                            y_title=t("query_slot", lang), colorbar_title=t("bias_table_row", lang), lang=lang,
                            colorscale="Viridis", zrange=(0, rows - 1), categorical=True).figure()


def groups_figure(image: np.ndarray, group_map: np.ndarray, layout: GroupLayout,
                  token_px: tuple[int, int], stage: int, block: int, lda_block: bool,
                  lang: str = "en") -> go.Figure:
    """Which tokens share a CrossFormer group in this block (group id as a categorical
    colour over the image); the members of group 0 are circled."""
    return groups_panel(image, group_map, layout, token_px, stage, block, lda_block, lang).figure()


def groups_panel(image: np.ndarray, group_map: np.ndarray, layout: GroupLayout,
                 token_px: tuple[int, int], stage: int, block: int, lda_block: bool,
                 lang: str = "en", marked: np.ndarray | None = None,
                 marked_note: str | None = None) -> PlainFigure:
    """``groups_figure`` with the circled tokens ``marked`` ((n, 2) rows and columns; default:
    the members of group 0) and what the title says of them."""
    n = layout.num_groups
    if layout.kind == "SDA":
        spacing = t("bias_groups_adjacent", lang)
    else:
        ih, iw = layout.interval
        spacing = t("bias_groups_interval", lang, ih=ih, iw=iw)
    h, w = group_map.shape
    title = t("fig_bias_groups", lang, kind=_kind_name(layout.kind, lang), stage=stage, block=block,
              h=h, w=w, n=n, g=layout.group_size, spacing=spacing)
    if lda_block and layout.kind == "SDA":
        title += t("bias_groups_fallback", lang)
    if layout.is_padded:
        title += t("bias_groups_padded", lang, hp=layout.padded_height, wp=layout.padded_width)
    title += t("bias_groups_marked", lang) if marked_note is None else marked_note
    fig = overlay(image, group_map.astype(float), token_px, title=title,
                  colorbar_title=t("group_id", lang), ids=n, token_offset=None, opacity=0.5,
                  x_title=t("x_pixels", lang), y_title=t("y_pixels", lang), height=520)
    fig.update_traces(hovertemplate=t("hover_bias_group", lang) + "<extra></extra>", selector=dict(type="heatmap"))
    ph, pw = token_px
    rows, cols = np.nonzero(group_map == 0) if marked is None else (marked[:, 0], marked[:, 1])
    fig.add_trace(dict(type="scatter", x=(cols + 0.5) * pw, y=(rows + 0.5) * ph, mode="markers",
                       marker=dict(symbol="circle-open", size=max(6, min(14, 2 * pw // 3)),
                                   color="black", line=dict(width=2)),
                       hoverinfo="skip", showlegend=False))
    return fig
