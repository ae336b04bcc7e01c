"""Figures of the Swin lens: windows on the image, the cyclic shift step by step, the
shifted-window mask, a clicked token's attention inside its window, and each logit split
into content (q·kᵀ·scale), relative position bias and mask."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.lenses.plotting import (DIVERGING_SCALE, FONT_SIZE, PlainFigure, base_layout, colorbar, constant_value,
                                      discrete_scale, image_data_uri, overlay, overlay_figure)
from explorer.lenses.swin.compute import MASK_VALUE, ShiftSteps, SwinAnalysis
from explorer.ui.i18n import t

def _token_px(analysis: SwinAnalysis, stage: int) -> tuple[int, int]:
    return analysis.stages[stage].token_px


def windows_figure(analysis: SwinAnalysis, image: np.ndarray, stage: int, block: int,
                   query: tuple[int, int] | None, lang: str = "en") -> go.Figure:
    """Which window every token of the stage falls in, for this block (shifted windows are
    the wrapped pieces the roll brings together), drawn over the image."""
    geo = analysis.block(stage, block).geometry
    ids = analysis.window_id_map(stage, block)
    kind = t("swin_shifted" if geo.shifted else "swin_regular", lang)
    title = t("fig_swin_windows", lang, stage=stage, block=block, kind=kind, n=geo.num_windows,
              ws=f"{geo.window[0]}×{geo.window[1]}", s=geo.shift[0])
    return overlay_figure(image, ids.astype(float), _token_px(analysis, stage), title=title,
                          colorbar_title=t("window_id", lang), ids=geo.num_windows, token_offset=None,
                          value_name=t("window_id", lang), opacity=0.45,
                          highlight=query, x_title=t("x_pixels", lang), y_title=t("y_pixels", lang))


def shift_steps_figure(steps: ShiftSteps, image: np.ndarray, token_px: tuple[int, int],
                       lang: str = "en") -> go.Figure:
    """The cyclic shift in four panels: before, rolled by (−s, −s) with the 9 mask regions,
    the windows that are then attended inside, and the reverse roll."""
    (sh, sw), (ph, pw) = steps.shift, token_px
    titles = [t("shift_step1", lang), t("shift_step2", lang, sh=sh, sw=sw),
              t("shift_step3", lang, n=steps.num_windows), t("shift_step4", lang, sh=sh, sw=sw)]
    fig = PlainFigure(rows=1, cols=4, subplot_titles=titles, horizontal_spacing=0.03)
    pictures = [image, steps.values_rolled, steps.values_rolled, image]
    hp, wp = steps.padded.shape
    for col, picture in enumerate(pictures, start=1):
        h, w = picture.shape[:2]
        fig.add_layout_image(dict(source=image_data_uri(picture), x=0, y=0, sizex=w, sizey=h,
                                  sizing="stretch", layer="below"), row=1, col=col)
        fig.update_xaxes(range=[0, wp * pw], showgrid=False, row=1, col=col)
        fig.update_yaxes(range=[hp * ph, 0], showgrid=False, scaleanchor=fig.refs(1, col)["xref"], row=1, col=col)
    H, W = steps.grid
    origin_r, origin_c = np.divmod(np.where(steps.padded >= 0, steps.padded, -1), W)
    custom = np.stack([origin_r, origin_c, steps.region_ids, steps.window_ids], axis=-1)
    centres_x, centres_y = (np.arange(wp) + 0.5) * pw, (np.arange(hp) + 0.5) * ph
    hover = t("hover_shift", lang) + "<extra></extra>"
    fig.add_trace(dict(type="heatmap", z=steps.region_ids, x=centres_x, y=centres_y, customdata=custom,
                       colorscale=discrete_scale(9), zmin=-0.5, zmax=8.5, opacity=0.5,
                       colorbar=dict(colorbar(t("region_id", lang)), x=1.0, len=0.9,
                                     tickvals=list(range(9))),
                       hovertemplate=hover), row=1, col=2)
    fig.add_trace(dict(type="heatmap", z=steps.window_ids, x=centres_x, y=centres_y, customdata=custom,
                       colorscale=discrete_scale(steps.num_windows), opacity=0.4,
                       showscale=False, hovertemplate=hover), row=1, col=3)
    title = t("fig_shift_steps", lang, ws=steps.window[0], sh=sh, sw=sw, H=H, W=W)
    if any(steps.pad):
        title += t("shift_padding", lang, ph=steps.pad[0], pw=steps.pad[1])
    fig = base_layout(fig, title, "", "", height=360)
    fig.update_annotations(font_size=FONT_SIZE - 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    fig.update_layout(margin=dict(l=20, r=20, b=20))  # the top margin is the title's (base_layout)
    return fig.figure()


def _slot_labels(analysis: SwinAnalysis, stage: int, block: int, window: int) -> list[str]:
    layout = analysis.block(stage, block).layout[window]
    return [f"{i}: ({r},{c})" if r >= 0 else f"{i}: pad" for i, (r, c) in enumerate(layout)]


def _region_of_slots(analysis: SwinAnalysis, stage: int, block: int, window: int) -> np.ndarray:
    from explorer.lenses.swin.compute import shift_region_ids

    geo = analysis.block(stage, block).geometry
    hp, wp = geo.padded
    regions = shift_region_ids(hp, wp, geo.window, geo.shift)
    wr, wc = divmod(window, geo.windows[1])
    return regions[wr * geo.window[0]:(wr + 1) * geo.window[0],
                   wc * geo.window[1]:(wc + 1) * geo.window[1]].ravel()


def mask_figure(analysis: SwinAnalysis, stage: int, block: int, window: int,
                lang: str = "en") -> go.Figure:
    """The additive mask of one window (0 = may attend, −100 = different region), with the
    region ids of query and key on hover."""
    item = analysis.block(stage, block)
    n = item.geometry.window_area
    mask = item.mask[window] if item.mask is not None else np.zeros((n, n), np.float32)
    labels = _slot_labels(analysis, stage, block, window)
    regions = _region_of_slots(analysis, stage, block, window)
    custom = np.stack(np.broadcast_arrays(regions[:, None], regions[None, :]), axis=-1)
    fig = PlainFigure().add_trace(dict(
        type="heatmap", z=mask, x=labels, y=labels, customdata=custom, zmin=MASK_VALUE, zmax=0,
        colorscale=[[0, "#3b1f5c"], [1, "#f2f2f2"]],
        colorbar=dict(colorbar(t("mask_value", lang)), tickvals=[MASK_VALUE, 0]),
        hovertemplate=t("hover_mask", lang) + "<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", showticklabels=n <= 16)
    fig.update_xaxes(showticklabels=n <= 16)
    key = "fig_mask" if item.mask is not None else "fig_mask_none"
    title = t(key, lang, stage=stage, block=block, window=window, n=n)
    return base_layout(fig, title, t("key_slot", lang), t("query_slot", lang), height=480).figure()


def window_attention_figure(analysis: SwinAnalysis, image: np.ndarray, stage: int, block: int,
                            head: int | None, query: tuple[int, int], lang: str = "en") -> go.Figure:
    """The clicked token's attention over the tokens of its window (blank outside it)."""
    geo = analysis.block(stage, block).geometry
    values = analysis.token_attention(stage, block, head, *query)
    head_name = t("mean_of_heads", lang, n=geo.heads) if head is None else t("head_n", lang, n=head)
    kind = t("swin_shifted" if geo.shifted else "swin_regular", lang)
    title = t("fig_swin_attention", lang, stage=stage, block=block, kind=kind, head=head_name,
              r=query[0], c=query[1])
    pad = analysis.padding_attention(stage, block, head, *query)
    if pad > 1e-6:
        title += t("swin_pad_weight", lang, w=pad)
    fig = overlay(image, values, _token_px(analysis, stage), title=title,
                  colorbar_title=t("attention_weight", lang), token_offset=None,
                  highlight=query, opacity=0.7, height=440,
                  x_title=t("x_px", lang), y_title=t("y_px", lang))
    return _zoom_to_window(fig, values, _token_px(analysis, stage), geo.window).figure()


def _zoom_to_window(fig: PlainFigure, values: np.ndarray, token_px: tuple[int, int],
                    window: tuple[int, int]) -> PlainFigure:
    """Zoom to the window plus a margin of one window, unless the roll split it in pieces."""
    rows, cols = np.nonzero(~np.isnan(values))
    if rows.size == 0:
        return fig
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    if (r1 - r0) * (c1 - c0) != rows.size:  # wrapped pieces in different corners
        return fig
    (ph, pw), (wh, ww) = token_px, window
    height, width = values.shape[0] * ph, values.shape[1] * pw
    fig.update_xaxes(range=[max(0, (c0 - ww) * pw), min(width, (c1 + ww) * pw)])
    fig.update_yaxes(range=[min(height, (r1 + wh) * ph), max(0, (r0 - wh) * ph)])
    return fig


def logit_split_figure(analysis: SwinAnalysis, stage: int, block: int, window: int,
                       head: int | None, lang: str = "en") -> go.Figure:
    """What the softmax sees, term by term: content + bias + mask -> probabilities."""
    item = analysis.block(stage, block)
    n = item.geometry.window_area

    def pick(array):  # (heads, N, N) -> one head or the mean
        return array.mean(0) if head is None else array[head]

    mask = item.mask[window] if item.mask is not None else np.zeros((n, n), np.float32)
    head_name = t("mean_of_heads", lang, n=item.geometry.heads) if head is None else t("head_n", lang, n=head)
    title = t("fig_logit_split", lang, stage=stage, block=block, window=window, head=head_name)
    cosine = dict(content_name=t("content_logit_cosine", lang), bias_name=t("cpb_bias", lang)) if analysis.cosine else {}
    return logit_split_panels(pick(item.content[window]), pick(item.bias), mask,
                              pick(item.probs[window]), _slot_labels(analysis, stage, block, window),
                              title, lang, **cosine)


def logit_split_panels(content: np.ndarray, bias: np.ndarray, mask: np.ndarray, probs: np.ndarray,
                       labels: list[str], title: str, lang: str = "en", *,
                       bias_name: str | None = None, mask_min: float = MASK_VALUE,
                       query_slot: int | None = None, content_name: str | None = None) -> go.Figure:
    """Four (N, N) heatmaps, query slots down and key slots across: content + bias + mask ->
    probabilities. Shared by every lens with windowed/grouped attention: ``bias_name`` names
    the bias panel (default: relative position bias) and ``content_name`` the content panel
    (default: q·kᵀ·scale), ``mask_min`` is the mask's most negative
    value, and ``query_slot`` outlines that query's row in every panel."""
    panels = [(content, content_name or t("content_logit", lang), DIVERGING_SCALE, 0.0),
              (bias, bias_name or t("rpb_bias", lang), DIVERGING_SCALE, 0.0),
              (mask, t("mask_value", lang), [[0, "#3b1f5c"], [1, "#f2f2f2"]], None),
              (probs, t("attention_weight", lang), "Viridis", None)]
    titles = []
    for z, name, _, _ in panels:  # a flat panel says its one value (it would look broken)
        same = constant_value(z)
        titles.append(name if same is None else f"{name}<br>{t('constant_panel', lang, v=same)}")
    fig = PlainFigure(rows=1, cols=4, subplot_titles=titles, horizontal_spacing=0.08)
    masked = bool((mask < 0).any())
    for col, (z, name, scale, zmid) in enumerate(panels, start=1):
        bar = dict(colorbar(""), x=fig.domain(1, col)[0][1] + 0.005, len=0.85, thickness=10)
        if z is mask:  # the bar spans what the mask holds: 0 alone when nothing is masked
            low = mask_min if masked else -1.0
            bar.update(tickvals=[low, 0], ticktext=[f"{mask_min:.3g}" if masked else "", "0"])
        # each panel's colour bar sits at its right edge (paper coordinates)
        fig.add_trace(dict(
            type="heatmap", z=z, x=labels, y=labels, colorscale=scale, zmid=zmid,
            zmin=(mask_min if masked else -1.0) if z is mask else None, zmax=0 if z is mask else None,
            colorbar=bar, hovertemplate=f"{name}<br>" + t("hover_slot_pair", lang) + "<extra></extra>",
        ), row=1, col=col)
        fig.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=col)
        fig.update_xaxes(showticklabels=False, row=1, col=col)
        if query_slot is not None:
            fig.add_shape(type="rect", x0=-0.5, x1=len(labels) - 0.5, y0=query_slot - 0.5,
                          y1=query_slot + 0.5, line=dict(color="#ff2d55", width=2), row=1, col=col)
    # one axis name per figure, on the first panel: four side by side overlap (in Chinese too)
    fig = base_layout(fig, title, "", "", height=380)
    fig.update_xaxes(title_text=t("key_slot", lang), row=1, col=1)
    fig.update_yaxes(title_text=t("query_slot", lang), row=1, col=1)
    fig.update_annotations(font_size=FONT_SIZE - 1)
    return fig.figure()
