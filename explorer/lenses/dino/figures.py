"""Figures of the DINO lens: the last block's CLS attention as a gallery of heads and as one
overlay, the official threshold masks (one colour per head, with their contours) over the image,
two models side by side (the DINO paper's supervised-vs-DINO comparison), and the multi-crop
views of the recipe. Nothing here runs a model: a threshold change redraws from the arrays."""

from __future__ import annotations

import copy
import functools

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from explorer.lenses.dino.compute import CropBox, DinoAnalysis, kept_mass, mask_outline, stronger_mass
from explorer.lenses.plotting import FONT_SIZE, base_layout, colorbar, image_data_uri, overlay_figure
from explorer.ui.i18n import t

__all__ = ["head_colors", "head_gallery_figure", "attention_overlay_figure", "masks_figure",
           "compare_figure", "crops_figure", "crop_views_figure", "features_figure"]

# Saturated colours that stay visible over photographs (one per head, cycled)
_HEAD_PALETTE = plotly.colors.qualitative.Plotly
GLOBAL_COLOR, LOCAL_COLOR = "#ff7f0e", "#19d3f3"
MASK_OPACITY = 0.5
FIGURE_WIDTH = 820  # px a full-width plot of the page draws in (margins and colour bar off): sizes panels


def head_colors(n: int) -> list[str]:
    return [_HEAD_PALETTE[i % len(_HEAD_PALETTE)] for i in range(n)]


def _head_scale(n: int) -> list:
    """A stepped colour scale giving heads 0..n−1 their colour (zmin −0.5, zmax n − 0.5)."""
    scale = []
    for i, color in enumerate(head_colors(n)):
        scale += [[i / n, color], [(i + 1) / n, color]]
    return scale


def _head_colorbar(n: int, lang: str) -> dict:
    return dict(**colorbar(t("head_index", lang)), tickvals=list(range(n)),
                ticktext=[t("head_n", lang, n=h) for h in range(n)])


def _axis(i: int) -> str:
    return "" if i == 0 else str(i + 1)


def _layout(title: str, height: int) -> dict:
    """``base_layout``'s title, fonts and margins as a plain dict. The panel grids below are
    assembled as dicts and turned into a figure once: plotly's per-axis updates on a live
    figure cost milliseconds each, and a threshold change must redraw within 50 ms."""
    layout = copy.deepcopy(_base_layout(title.count("<br>"), height))
    layout["title"]["text"] = title
    return layout


@functools.lru_cache(maxsize=64)
def _base_layout(breaks: int, height: int) -> dict:
    """Memoised by what the layout depends on besides the text (its line count sets the top
    margin): building a plotly layout takes ~5 ms, a tenth of the threshold budget."""
    placeholder = "<br>".join(["x"] * (breaks + 1))
    layout = base_layout(go.Figure(), placeholder, "", "", height=height).layout.to_plotly_json()
    layout.pop("xaxis", None)
    layout.pop("yaxis", None)
    return layout


def _grid(title: str, titles: list[str], cols: int, aspect: float, lang: str, spacing: float = 0.035,
          extra_height: int = 0) -> dict:
    """The layout of a titled grid of image panels (row-major, as ``make_subplots`` lays them
    out) sized for images of ``aspect`` = height / width; axis names on the bottom row and the
    left column only."""
    rows = -(-len(titles) // cols)
    vspace = min(0.3 / rows, 0.14) if rows > 1 else 0.0
    width, height = (1 - spacing * (cols - 1)) / cols, (1 - vspace * (rows - 1)) / rows
    panel = min(max(FIGURE_WIDTH * width * aspect, 140), 360)
    layout = _layout(title, int(rows * (panel + 70) + 110 + extra_height))
    layout["annotations"] = []
    for i, text in enumerate(titles):
        r, c = divmod(i, cols)
        left, top = c * (width + spacing), 1 - r * (height + vspace)
        bottom, right = max(top - height, 0.0), min(left + width, 1.0)  # no rounding past the edges
        layout[f"xaxis{_axis(i)}"] = dict(domain=[left, right], anchor=f"y{_axis(i)}", showgrid=False,
                                          zeroline=False, constrain="domain",
                                          title=dict(text=t("x_px", lang) if r == rows - 1 else None))
        layout[f"yaxis{_axis(i)}"] = dict(domain=[bottom, top], anchor=f"x{_axis(i)}", showgrid=False,
                                          zeroline=False, constrain="domain", constraintoward="top",
                                          scaleanchor=f"x{_axis(i)}",
                                          title=dict(text=t("y_px", lang) if c == 0 else None))
        layout["annotations"].append(dict(text=text, x=left + width / 2, y=top, xref="paper", yref="paper",
                                          xanchor="center", yanchor="bottom", showarrow=False,
                                          font=dict(size=FONT_SIZE - 2)))
    # the figure title hangs from the top edge; panel titles that run over two lines get room below it
    layout["title"].update(yref="container", y=1.0, yanchor="top", pad=dict(t=24))
    layout["margin"]["t"] += 12 + 22 * max(text.count("<br>") for text in titles[:cols])
    layout["images"] = []
    return layout


def _figure(traces: list[dict], layout: dict) -> go.Figure:
    """Assemble a grid figure from plain dicts without plotly's per-property validation, which
    alone costs tens of milliseconds here (the tests rebuild every figure with validation on)."""
    return go.Figure(traces, layout, _validate=False)


def _image_below(layout: dict, pixels: np.ndarray, i: int) -> None:
    """The image under panel ``i``, the panel's axes spanning it (y downwards)."""
    h, w = pixels.shape[:2]
    layout["images"].append(dict(source=image_data_uri(pixels), xref=f"x{_axis(i)}", yref=f"y{_axis(i)}", x=0,
                                 y=0, sizex=w, sizey=h, sizing="stretch", layer="below"))
    layout[f"xaxis{_axis(i)}"]["range"] = [0, w]
    layout[f"yaxis{_axis(i)}"]["range"] = [h, 0]


def _patch_axes(a: DinoAnalysis) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres of the patch columns and rows (the heatmap cells cover the patches exactly)."""
    (rows, cols), (ph, pw) = a.grid, a.patch_size
    return (np.arange(cols) + 0.5) * pw, (np.arange(rows) + 0.5) * ph


def _patch_index(a: DinoAnalysis) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(a.grid[0]), np.arange(a.grid[1]), indexing="ij")


def _aspect(a: DinoAnalysis) -> float:
    return a.grid[0] * a.patch_size[0] / (a.grid[1] * a.patch_size[1])


# --------------------------------------------------------------------------- attention

def head_gallery_figure(a: DinoAnalysis, lang: str = "en") -> go.Figure:
    """One panel per head: its CLS attention over the patches, laid over the image, on one
    colour scale shared by all heads (so heads compare)."""
    heads = a.num_heads
    share = a.patch_share
    titles = [t("dn_head_panel", lang, h=h, share=share[h]) for h in range(heads)]
    title = t("fig_dn_heads", lang, block=a.block, heads=heads, rows=a.grid[0], cols=a.grid[1],
              p=a.patch_size[0])
    layout = _grid(title, titles, min(heads, 3), _aspect(a), lang)
    x, y = _patch_axes(a)
    r, c = _patch_index(a)
    custom = np.stack([r, c, a.num_prefix_tokens + r * a.grid[1] + c], axis=-1)
    zmax = float(a.attention.max())
    traces = [dict(
        type="heatmap", z=a.attention[h], x=x, y=y, customdata=custom, colorscale="Viridis", zmin=0.0, zmax=zmax,
        opacity=0.75, showscale=h == 0, colorbar=colorbar(t("dn_cls_attention", lang)),
        hovertemplate=t("hover_dn_head", lang, h=h) + "<extra></extra>", xaxis=f"x{_axis(h)}",
        yaxis=f"y{_axis(h)}") for h in range(heads)]
    for h in range(heads):
        _image_below(layout, a.model_image, h)
    return _figure(traces, layout)


def attention_overlay_figure(a: DinoAnalysis, head: int | None, lang: str = "en") -> go.Figure:
    """One head's (or the mean of heads') CLS attention over the image, large."""
    values = a.mean_attention if head is None else a.attention[head]
    name = t("mean_of_heads", lang, n=a.num_heads) if head is None else t("head_n", lang, n=head)
    title = t("fig_dn_overlay", lang, block=a.block, head=name, share=float(values.sum()))
    return overlay_figure(a.model_image, values, a.patch_size, title=title,
                          colorbar_title=t("dn_cls_attention", lang), token_offset=a.num_prefix_tokens,
                          value_name=t("attention_weight", lang), opacity=0.7, height=520,
                          x_title=t("x_pixels", lang), y_title=t("y_pixels", lang))


# --------------------------------------------------------------------------- threshold masks

_CLEAR = [[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]]
# plotly.js knows Viridis by name but not Magma: the figures here skip validation, which would expand it
_MAGMA = plotly.colors.make_colorscale(plotly.colors.sequential.Magma)


def _mask_traces(a: DinoAnalysis, masks: np.ndarray, above: np.ndarray, head: int, axis: int, lang: str, *,
                 hover_outside: bool, showscale: bool, n_colors: int | None = None) -> list[dict]:
    """A head's mask as a flat-coloured heatmap (patches outside are gaps) and its contour;
    with ``hover_outside`` also an invisible heatmap of the other patches, so every patch
    hovers: (row, col), attention, the mass held by stronger patches, in or out of the mask.
    ``n_colors``: heads on the shared colour scale (a figure with two models uses the larger count)."""
    x, y = _patch_axes(a)
    r, c = _patch_index(a)
    n = n_colors or a.num_heads
    # float32 halves what every redraw serialises and sends (patch indices are exact in it)
    custom = np.stack([r, c, a.attention[head], above[head]], axis=-1).astype(np.float32)
    ref = dict(xaxis=f"x{_axis(axis)}", yaxis=f"y{_axis(axis)}", x=x, y=y, customdata=custom, hoverongaps=False)
    inside, gap = np.float32(head), np.float32(np.nan)
    traces = [dict(type="heatmap", z=np.where(masks[head], inside, gap), colorscale=_head_scale(n), zmin=-0.5,
                   zmax=n - 0.5, opacity=MASK_OPACITY, showscale=showscale,
                   **(dict(colorbar=_head_colorbar(n, lang)) if showscale else {}), **ref,
                   hovertemplate=t("hover_dn_mask", lang, h=head, where=t("dn_inside", lang)) + "<extra></extra>")]
    if hover_outside:
        traces.append(dict(type="heatmap", z=np.where(masks[head], gap, np.float32(0)), colorscale=_CLEAR,
                           showscale=False, **ref,
                           hovertemplate=t("hover_dn_mask", lang, h=head, where=t("dn_outside", lang))
                           + "<extra></extra>"))
    xs, ys = mask_outline(masks[head], a.patch_size)
    traces.append(dict(type="scatter", x=xs, y=ys, mode="lines", line=dict(color=head_colors(n)[head], width=2.5),
                       hoverinfo="skip", showlegend=False, xaxis=ref["xaxis"], yaxis=ref["yaxis"]))
    return traces


def masks_figure(a: DinoAnalysis, threshold: float, lang: str = "en") -> go.Figure:
    """visualize_attention.py's masks: per head the smallest set of patches holding a share t
    of its CLS attention, in the head's colour with its contour. First panel: all heads at once
    (the DINO paper's Fig. 3 look), then one panel per head."""
    heads = a.num_heads
    masks = a.masks(threshold)
    mass = kept_mass(a.attention, masks)
    above = stronger_mass(a.attention)
    titles = [t("dn_all_heads", lang, n=heads)] + [
        t("dn_mask_panel", lang, h=h, k=int(masks[h].sum()), n=a.num_patches, mass=mass[h]) for h in range(heads)]
    title = t("fig_dn_masks", lang, t=threshold, pct=threshold, p=a.patch_size[0])
    panels = heads + 1
    layout = _grid(title, titles, min(panels, 3), _aspect(a), lang)
    traces = []
    for h in range(heads):
        traces += _mask_traces(a, masks, above, h, 0, lang, hover_outside=False, showscale=h == 0)
        traces += _mask_traces(a, masks, above, h, h + 1, lang, hover_outside=True, showscale=False)
    for i in range(heads + 1):
        _image_below(layout, a.model_image, i)
    return _figure(traces, layout)


def compare_figure(models: list[tuple[str, DinoAnalysis]], threshold: float, lang: str = "en") -> go.Figure:
    """The same image through several models (the DINO paper's supervised-vs-DINO comparison),
    one row each: the mean-of-heads CLS attention with its own colour bar, and every head's
    threshold mask with its contour."""
    spacing = 0.16  # room for the left column's colour bars
    titles = []
    for label, a in models:
        titles += [t("dn_compare_mean", lang, model=label, n=a.num_heads),
                   t("dn_compare_masks", lang, t=threshold, area=float(a.masks(threshold).any(0).mean()))]
    layout = _grid(t("fig_dn_compare", lang, t=threshold), titles, 2, max(_aspect(a) for _, a in models), lang,
                   spacing=spacing, extra_height=30)
    max_heads = max(a.num_heads for _, a in models)
    traces = []
    for m, (label, a) in enumerate(models):
        left, right = 2 * m, 2 * m + 1
        x, y = _patch_axes(a)
        r, c = _patch_index(a)
        low, high = layout[f"yaxis{_axis(left)}"]["domain"]
        tokens = a.num_prefix_tokens + r * a.grid[1] + c
        traces.append(dict(
            type="heatmap", z=a.mean_attention, x=x, y=y, customdata=np.stack([r, c, tokens], -1),
            colorscale="Viridis", zmin=0.0, opacity=0.75,
            colorbar={**colorbar(t("dn_cls_attention", lang)), "x": (1 - spacing) / 2 + 0.01, "xanchor": "left",
                      "y": (low + high) / 2, "yanchor": "middle", "len": high - low, "thickness": 12},
            hovertemplate=t("hover_dn_mean", lang) + "<extra></extra>",
            xaxis=f"x{_axis(left)}", yaxis=f"y{_axis(left)}"))
        masks, above = a.masks(threshold), stronger_mass(a.attention)
        for h in range(a.num_heads):
            traces += _mask_traces(a, masks, above, h, right, lang, hover_outside=False,
                                   showscale=m == 0 and h == 0, n_colors=max_heads)
        _image_below(layout, a.model_image, left)
        _image_below(layout, a.model_image, right)
    return _figure(traces, layout)


# --------------------------------------------------------------------------- multi-crop

def _box_label(box: CropBox, image_size: tuple[int, int], lang: str) -> str:
    return t("dn_crop_hover", lang, name=box.name, kind=t(f"dn_crop_{box.kind}", lang),
             left=box.left, top=box.top, w=box.width, h=box.height, area=box.area_fraction(image_size),
             ratio=box.width / box.height, size=box.output_size,
             flip=t("dn_yes" if box.flipped else "dn_no", lang),
             to=t("dn_to_teacher" if box.to_teacher else "dn_to_student", lang))


def crops_figure(display: np.ndarray, image_size: tuple[int, int], boxes: list[CropBox], seed: int,
                 lang: str = "en") -> go.Figure:
    """The crop boxes on the source image (in its own pixels): global crops solid orange,
    local crops dashed cyan; hover gives each box's numbers."""
    width, height = image_size
    fig = go.Figure()
    shown: set[str] = set()
    for box in boxes:
        color = GLOBAL_COLOR if box.to_teacher else LOCAL_COLOR
        x0, y0, x1, y1 = box.left, box.top, box.left + box.width, box.top + box.height
        label = _box_label(box, image_size, lang)
        fig.add_trace(go.Scatter(
            x=[x0, x1, x1, x0, x0], y=[y0, y0, y1, y1, y0], mode="lines", fill="toself",
            fillcolor="rgba(255,127,14,0.08)" if box.to_teacher else "rgba(25,211,243,0.06)",
            line=dict(color=color, width=3.5 if box.to_teacher else 2, dash=None if box.to_teacher else "dash"),
            name=t("dn_legend_global" if box.to_teacher else "dn_legend_local", lang),
            legendgroup=box.kind, showlegend=box.kind not in shown, hoveron="fills+points",
            text=[label] * 5, hovertemplate="%{text}<extra></extra>"))
        shown.add(box.kind)
        fig.add_annotation(x=x0, y=y0, text=f"<b>{box.name}</b>", showarrow=False, xanchor="left", yanchor="top",
                           font=dict(color="black", size=FONT_SIZE - 2), bgcolor=color, borderpad=1, opacity=0.9)
    fig.add_layout_image(dict(source=image_data_uri(display), xref="x", yref="y", x=0, y=0, sizex=width,
                              sizey=height, sizing="stretch", layer="below"))
    fig.update_xaxes(range=[0, width], showgrid=False, constrain="domain")
    fig.update_yaxes(range=[height, 0], showgrid=False, scaleanchor="x", constrain="domain")
    n_local = sum(not b.to_teacher for b in boxes)
    title = t("fig_dn_crops", lang, n=n_local, seed=seed, w=width, h=height)
    fig = base_layout(fig, title, t("dn_x_image", lang), t("dn_y_image", lang), height=560)
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.14, x=0))
    return fig


def crop_views_figure(views: list[np.ndarray], boxes: list[CropBox], lang: str = "en") -> go.Figure:
    """What the networks are fed: the global views (224 px) on top, the local views (96 px)
    below, at their true relative sizes; each framed in its colour and named with where it goes."""
    gap, per_row = 16, 8
    fig = go.Figure()
    globals_ = [(v, b) for v, b in zip(views, boxes) if b.to_teacher]
    locals_ = [(v, b) for v, b in zip(views, boxes) if not b.to_teacher]
    places = []
    x = 0
    for view, box in globals_:
        places.append((view, box, x, 0))
        x += box.output_size + gap
    top = (globals_[0][1].output_size if globals_ else 0) + 3 * gap
    for i, (view, box) in enumerate(locals_):
        r, c = divmod(i, per_row)
        places.append((view, box, c * (box.output_size + gap), top + r * (box.output_size + 2 * gap)))
    width = max([px + b.output_size for _, b, px, _ in places] + [1])
    height = max([py + b.output_size for _, b, _, py in places] + [1])
    for view, box, px, py in places:
        size = box.output_size
        color = GLOBAL_COLOR if box.to_teacher else LOCAL_COLOR
        fig.add_layout_image(dict(source=image_data_uri(view), xref="x", yref="y", x=px, y=py, sizex=size,
                                  sizey=size, sizing="stretch", layer="below"))
        fig.add_trace(go.Scatter(
            x=[px, px + size, px + size, px, px], y=[py, py, py + size, py + size, py], mode="lines",
            fill="toself", fillcolor="rgba(0,0,0,0)", line=dict(color=color, width=3), hoveron="fills+points",
            showlegend=False,
            hovertemplate=t("dn_view_hover", lang, name=box.name, kind=t(f"dn_crop_{box.kind}", lang), size=size,
                            flip=t("dn_yes" if box.flipped else "dn_no", lang),
                            to=t("dn_to_teacher" if box.to_teacher else "dn_to_student", lang))
            + "<extra></extra>"))
        fig.add_annotation(x=px, y=py, text=f"<b>{box.name}</b>{' ↔' if box.flipped else ''}", showarrow=False,
                           xanchor="left", yanchor="bottom", font=dict(size=FONT_SIZE - 2, color="black"))
    fig.update_xaxes(range=[-4, width + 4], showgrid=False, constrain="domain", zeroline=False)
    fig.update_yaxes(range=[height + 4, -28], showgrid=False, scaleanchor="x", constrain="domain", zeroline=False)
    n_local = len(locals_)
    title = t("fig_dn_views", lang, g=len(globals_), n=n_local, total=len(places),
              gs=globals_[0][1].output_size if globals_ else 0, ls=locals_[0][1].output_size if locals_ else 0)
    return base_layout(fig, title, t("dn_x_view", lang), t("dn_y_view", lang), height=200 + int(height * 0.9))


# --------------------------------------------------------------------------- the tokens themselves

def features_figure(models: list[tuple[str, DinoAnalysis]], pca_threshold: float, lang: str = "en") -> go.Figure:
    """The last block's tokens, one row per model (e.g. DINOv2 with and without registers), three
    panels each: the DINOv2 PCA colours of the foreground patches, each patch token's norm with
    the high-norm tokens marked (Darcet et al.), and the CLS attention (mean of heads) next to
    them — where the high-norm tokens are, the attention goes."""
    titles = []
    for label, a in models:
        foreground = a.first_component > pca_threshold
        titles += [t("dn_pca_panel", lang, model=label, k=int(foreground.sum()), n=a.num_patches),
                   t("dn_norm_panel", lang, k=int(a.high_norm.sum())), t("dn_attn_panel", lang, n=a.num_heads)]
    spacing = 0.11  # room for the two colour bars between the panels
    block = models[0][1].block
    layout = _grid(t("fig_dn_features", lang, t=pca_threshold, block=block), titles, 3,
                   max(_aspect(a) for _, a in models), lang, spacing=spacing, extra_height=30)
    width = (1 - 2 * spacing) / 3
    traces = []
    for m, (label, a) in enumerate(models):
        first = a.first_component
        x, y = _patch_axes(a)
        r, c = _patch_index(a)
        tokens = a.num_prefix_tokens + r * a.grid[1] + c
        (ph, pw) = a.patch_size
        panel = 3 * m
        axes = dict(xaxis=f"x{_axis(panel)}", yaxis=f"y{_axis(panel)}")
        traces += [dict(  # the PCA colours, one cell per patch; hover from the clear heatmap above it
            type="image", z=np.round(a.pca_rgb(pca_threshold) * 255).astype(np.uint8), x0=pw / 2, dx=pw,
            y0=ph / 2, dy=ph, hoverinfo="skip", **axes),
            dict(type="heatmap", z=first, x=x, y=y, customdata=np.stack([r, c, tokens], -1),
                 text=np.where(first > pca_threshold, t("dn_foreground", lang), t("dn_background", lang)),
                 colorscale=_CLEAR, showscale=False, hovertemplate=t("hover_dn_pca", lang) + "<extra></extra>",
                 **axes)]
        low, high = layout[f"yaxis{_axis(panel)}"]["domain"]
        for i, (values, name, scale) in enumerate(((a.token_norms, t("dn_token_norm", lang), _MAGMA),
                                                   (a.mean_attention, t("dn_cls_attention", lang), "Viridis")), 1):
            traces.append(dict(
                type="heatmap", z=values, x=x, y=y, customdata=np.stack([r, c, tokens], -1), colorscale=scale,
                zmin=0.0, colorbar={**colorbar(name), "x": i * (width + spacing) + width + 0.005, "xanchor": "left",
                                    "y": (low + high) / 2, "yanchor": "middle", "len": high - low, "thickness": 12},
                hovertemplate=t("hover_dn_norm" if i == 1 else "hover_dn_mean", lang) + "<extra></extra>",
                xaxis=f"x{_axis(panel + i)}", yaxis=f"y{_axis(panel + i)}"))
        marked = a.high_norm
        if marked.any():
            traces.append(dict(type="scatter", mode="markers", x=x[c[marked]], y=y[r[marked]],
                               xaxis=f"x{_axis(panel + 1)}", yaxis=f"y{_axis(panel + 1)}",
                               marker=dict(symbol="x-thin-open", size=14, color="#00e5ff", line=dict(width=3)),
                               name=t("dn_high_norm", lang), showlegend=m == 0, legendgroup="high", hoverinfo="skip"))
        for i in range(panel, panel + 3):
            layout[f"xaxis{_axis(i)}"]["range"] = [0, a.grid[1] * pw]
            layout[f"yaxis{_axis(i)}"]["range"] = [a.grid[0] * ph, 0]
    layout["legend"] = dict(orientation="h", x=0, y=-0.08, yanchor="top")
    return _figure(traces, layout)
