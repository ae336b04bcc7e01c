"""Figures of the NaViT lens: every image cut into patches at its own aspect ratio (dropped
patches greyed), the packed sequences as a strip of tokens coloured by image, and one
sequence's block-diagonal attention mask."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.lenses.navit.compute import NaViTAnalysis
from explorer.lenses.plotting import FONT_SIZE, base_layout, colorbar, image_data_uri
from explorer.ui.i18n import t

__all__ = ["image_colors", "patches_figure", "packing_figure", "mask_figure"]

PADDING_COLOR = "#d9d9d9"
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#17becf", "#bcbd22", "#7f7f7f", "#393b79", "#ad494a")


def image_colors(n: int) -> list[str]:
    return [_PALETTE[i % len(_PALETTE)] for i in range(n)]


def _id_scale(n: int) -> list:
    """Colour scale for values −1 (padding) and 0..n−1 (images), one flat colour each."""
    colors = [PADDING_COLOR, *image_colors(n)]
    steps = len(colors)
    scale = []
    for i, color in enumerate(colors):
        scale += [[i / steps, color], [(i + 1) / steps, color]]
    return scale


def patches_figure(a: NaViTAnalysis, lang: str = "en") -> go.Figure:
    """One panel per image at its own aspect ratio with its patch grid; patches dropped by
    token dropout are greyed out. Hover: patch (row, col), kept or dropped, where it went."""
    n = len(a.images)
    cols = min(n, 3)
    rows = -(-n // cols)
    colors = image_colors(n)
    titles = [t("nv_panel", lang, i=i, name=im.name[:24], h=im.grid[0], w=im.grid[1],
                kept=len(im.kept), n=im.tokens) for i, im in enumerate(a.images)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.07,
                        vertical_spacing=0.16 if rows > 1 else 0.1)
    p = a.patch
    for i, im in enumerate(a.images):
        r, c = divmod(i, cols)
        h, w = im.pixels.shape[:2]
        kept = im.kept_map()
        # where each kept patch sits in the pack
        place = np.full(im.grid, -1)
        place.reshape(-1)[im.kept] = im.positions
        rr, cc = np.meshgrid(np.arange(im.grid[0]), np.arange(im.grid[1]), indexing="ij")
        custom = np.stack([rr, cc, np.full(im.grid, im.sequence), place,
                           np.where(kept, t("nv_kept", lang), t("nv_dropped", lang))], axis=-1)
        # one layer: kept patches clear, dropped ones darkened; every patch hovers
        fig.add_trace(go.Heatmap(
            z=np.where(kept, 0.0, 1.0), x=(np.arange(im.grid[1]) + 0.5) * p, y=(np.arange(im.grid[0]) + 0.5) * p,
            customdata=custom, zmin=0, zmax=1, xgap=1, ygap=1,
            colorscale=[[0, "rgba(255,255,255,0)"], [0.5, "rgba(255,255,255,0)"],
                        [0.5, "rgba(40,40,40,0.75)"], [1, "rgba(40,40,40,0.75)"]],
            showscale=i == 0, colorbar=dict(**colorbar(t("nv_patch", lang)), tickvals=[0.25, 0.75],
                                            ticktext=[t("nv_kept", lang), t("nv_dropped", lang)]),
            hovertemplate=t("hover_nv_patch", lang) + "<extra></extra>"), row=r + 1, col=c + 1)
        axis = "" if i == 0 else str(i + 1)
        fig.add_layout_image(dict(source=image_data_uri(im.pixels), xref=f"x{axis}", yref=f"y{axis}", x=0, y=0,
                                  sizex=w, sizey=h, sizing="stretch", layer="below"))
        # the patch grid as one line trace (hundreds of layout shapes make plotly slow), then
        # a frame in the image's colour
        xs, ys = [], []
        for y in range(0, h + 1, p):
            xs += [0, w, None]
            ys += [y, y, None]
        for x in range(0, w + 1, p):
            xs += [x, x, None]
            ys += [0, h, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="white", width=1),
                                 hoverinfo="skip", showlegend=False), row=r + 1, col=c + 1)
        fig.add_trace(go.Scatter(x=[0, w, w, 0, 0], y=[0, 0, h, h, 0], mode="lines",
                                 line=dict(color=colors[i], width=4), hoverinfo="skip", showlegend=False),
                      row=r + 1, col=c + 1)
        fig.update_xaxes(range=[0, w], showgrid=False, constrain="domain", row=r + 1, col=c + 1,
                         title_text=t("x_px", lang) if r == rows - 1 else None)
        fig.update_yaxes(range=[h, 0], showgrid=False, scaleanchor=f"x{axis}", constrain="domain",
                         row=r + 1, col=c + 1, title_text=t("y_px", lang) if c == 0 else None)
    fig.update_annotations(font_size=FONT_SIZE - 2)
    title = t("fig_nv_patches", lang, n=n, p=a.patch, drop=a.token_dropout)
    fig = base_layout(fig, title, "", "", height=330 * rows + 120)
    return fig


def packing_figure(a: NaViTAnalysis, lang: str = "en") -> go.Figure:
    """The packed sequences: one row per sequence, one cell per token slot, coloured by the
    image it belongs to (grey = padding)."""
    n = len(a.images)
    s, length = a.owner.shape
    custom = np.stack([np.broadcast_to(np.arange(s)[:, None], (s, length)),
                       np.broadcast_to(np.arange(length)[None], (s, length)),
                       a.owner, a.image_ids, a.positions[..., 0], a.positions[..., 1]], axis=-1)
    names = np.array([im.name for im in a.images] + [t("nv_padding", lang)])
    label = names[np.where(a.owner >= 0, a.owner, n)]
    custom = np.concatenate([custom.astype(object), label[..., None]], axis=-1)
    fig = go.Figure(go.Heatmap(
        z=a.owner, x=np.arange(length), y=np.arange(s), customdata=custom, colorscale=_id_scale(n),
        zmin=-1.5, zmax=n - 0.5, xgap=0.5, ygap=3,
        colorbar=dict(**colorbar(t("nv_image", lang)), tickvals=list(range(-1, n)),
                      ticktext=[t("nv_padding", lang)] + [str(i) for i in range(n)]),
        hovertemplate=t("hover_nv_token", lang) + "<extra></extra>"))
    fig.update_yaxes(autorange="reversed", tickvals=list(range(s)))
    title = t("fig_nv_packing", lang, n=n, s=s, L=a.max_seq_len, length=length, util=a.utilisation)
    # tall enough for one colour-bar tick per image to stay legible
    height = max(170 + 46 * s, 200 + 22 * n)
    return base_layout(fig, title, t("nv_position", lang), t("nv_sequence_axis", lang), height=height)


def mask_figure(a: NaViTAnalysis, sequence: int, lang: str = "en") -> go.Figure:
    """One sequence's attention mask: a cell is coloured by the image when the query may
    attend to the key (same image, key not padding), white when it may not."""
    n = len(a.images)
    owner = a.owner[sequence]
    mask = a.mask[sequence]
    real = owner >= 0
    z = np.where(mask & real[:, None] & real[None, :], owner[:, None], np.nan).astype(float)
    custom = np.stack([np.broadcast_to(owner[:, None], mask.shape), np.broadcast_to(owner[None, :], mask.shape),
                       mask.astype(int)], axis=-1)
    fig = go.Figure(go.Heatmap(
        z=z, customdata=custom, colorscale=_id_scale(n), zmin=-1.5, zmax=n - 0.5, hoverongaps=True,
        colorbar=dict(**colorbar(t("nv_image", lang)), tickvals=list(range(-1, n)),
                      ticktext=[t("nv_padding", lang)] + [str(i) for i in range(n)]),
        hovertemplate=t("hover_nv_mask", lang) + "<extra></extra>"))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_xaxes(constrain="domain")
    images = sorted({int(o) for o in owner[real]})
    title = t("fig_nv_mask", lang, s=sequence, images=", ".join(map(str, images)), L=len(owner),
              pad=int((~real).sum()))
    return base_layout(fig, title, t("nv_key", lang), t("nv_query", lang), height=520)
