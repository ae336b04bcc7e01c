"""Figures of the CrossFormer lens: SDA/LDA groups on the image (the position-bias lens's
figure, with the clicked token's group marked), a clicked token's attention over its group,
the cross-scale embedding's kernels as concentric footprints around that token, and the
logit split of its group (the Swin lens's panels with a DPB bias and a padding mask)."""

from __future__ import annotations

import math

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from explorer.lenses.bias import figures as bias_figures
from explorer.lenses.crossformer.compute import CrossFormerAnalysis, CrossFormerImageAnalysis
from explorer.lenses.plotting import PlainFigure, base_layout, colorbar, image_data_uri, message_figure, overlay
from explorer.lenses.swin.figures import logit_split_panels
from explorer.models.crossformer import NEG_INF
from explorer.ui.i18n import t

__all__ = ["kind_name", "head_name", "groups_figure", "group_attention_figure",
           "cross_scale_figure", "logit_split_figure", "message_figure"]

QUERY_COLOR = "#ff2d55"
_KERNEL_COLORS = plotly.colors.qualitative.Set2



def kind_name(kind: str, fallback: bool, lang: str) -> str:
    """"SDA (short-distance)" / "LDA (long-distance)", and the fallback of an LDA block."""
    if fallback:  # an LDA block whose map is ≤ G runs SDA
        return t("bias_lda", lang) + t("cf_fallback_short", lang)
    return t("bias_sda" if kind == "SDA" else "bias_lda", lang)


def head_name(heads: int, head: int | None, lang: str) -> str:
    return t("mean_of_heads", lang, n=heads) if head is None else t("head_n", lang, n=head)


def _query_box(fig: PlainFigure, query: tuple[int, int], token_px: tuple[int, int]) -> None:
    (r, c), (ph, pw) = query, token_px
    fig.add_shape(type="rect", x0=c * pw, x1=(c + 1) * pw, y0=r * ph, y1=(r + 1) * ph,
                  line=dict(color=QUERY_COLOR, width=3))


def groups_figure(result: CrossFormerImageAnalysis, stage: int, block: int,
                  query: tuple[int, int], lang: str = "en") -> go.Figure:
    """Which tokens share a group in this block (the position-bias lens's figure); the
    members of the clicked token's group are circled and the token is boxed."""
    groups, cross = result.groups, result.cross
    item = cross.block(stage, block)
    token_px = groups.token_px[stage]
    group, _ = cross.group_of_token(stage, block, *query)
    members = item.members(group)
    fig = bias_figures.groups_panel(groups.model_image, groups.group_maps[stage][block],
                                    groups.layouts[stage][block], token_px, stage, block,
                                    item.lda_block, lang, marked=members[members[:, 0] >= 0],
                                    marked_note=t("cf_groups_marked", lang, g=group))
    _query_box(fig, query, token_px)
    return fig.figure()


def group_attention_figure(analysis: CrossFormerAnalysis, image: np.ndarray, stage: int,
                           block: int, head: int | None, query: tuple[int, int],
                           lang: str = "en") -> go.Figure:
    """The clicked token's attention over the members of its group, on the image; blank
    (NaN) on every other token. An SDA group is one square, an LDA group is spread out."""
    item = analysis.block(stage, block)
    values = analysis.token_attention(stage, block, head, *query)
    group, slot = analysis.group_of_token(stage, block, *query)
    lay = item.layout
    if lay.kind == "SDA":
        spacing = t("bias_groups_adjacent", lang)
    else:
        spacing = t("bias_groups_interval", lang, ih=lay.interval[0], iw=lay.interval[1])
    title = t("fig_cf_attention", lang, block=block, kind=kind_name(lay.kind, item.fallback, lang),
              r=query[0], c=query[1], head=head_name(item.heads, head, lang), stage=stage,
              group=group, g=lay.group_size, spacing=spacing)
    pad = analysis.padding_attention(stage, block, head, *query)
    if lay.is_padded:
        title += t("cf_pad_weight", lang, w=pad)
    token_px = analysis.token_px[stage]
    fig = overlay(image, values, token_px, title=title,
                  colorbar_title=t("attention_weight", lang), token_offset=None,
                  value_name=t("attention_weight", lang), highlight=query, opacity=0.8,
                  height=480, x_title=t("x_pixels", lang), y_title=t("y_pixels", lang))
    fig.update_traces(hoverongaps=False, selector=dict(type="heatmap"))
    return fig.figure()


def _footprint_cells(analysis: CrossFormerAnalysis, stage: int, query: tuple[int, int]):
    """The cells (in input pixels) around the query that the layer's kernels read, each
    with the index (kernels sorted small to large) of the smallest kernel that reads it."""
    layer = analysis.scale_layer(stage)
    convs = sorted(layer.convs, key=lambda c: c.kernel)
    boxes = [layer.footprint(c, *query) for c in convs]
    unit = math.gcd(layer.token_px, *[b[0] - boxes[0][0] for b in boxes],
                    *[layer.footprint_px(c) for c in convs]) or 1
    y0, x0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    y1, x1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    ys, xs = np.arange(y0, y1, unit), np.arange(x0, x1, unit)
    cy, cx = np.meshgrid(ys, xs, indexing="ij")
    smallest = np.full(cy.shape, np.nan)
    for k, (by0, bx0, by1, bx1) in reversed(list(enumerate(boxes))):
        inside = (cy >= by0) & (cy + unit <= by1) & (cx >= bx0) & (cx + unit <= bx1)
        smallest[inside] = k
    return layer, convs, boxes, unit, ys, xs, smallest


def cross_scale_figure(analysis: CrossFormerAnalysis, image: np.ndarray, stage: int,
                       query: tuple[int, int], lang: str = "en") -> go.Figure:
    """The cross-scale embedding that makes stage ``stage``'s tokens, around the clicked
    token: each kernel's direct footprint (k × the input unit) as a concentric square, the
    channel share of each kernel in the legend and on hover."""
    layer, convs, boxes, unit, ys, xs, smallest = _footprint_cells(analysis, stage, query)
    height_px, width_px = image.shape[:2]
    n = len(convs)
    kernels_px = [layer.footprint_px(c) for c in convs]
    labels = [t("cf_scale_kernel", lang, k=c.kernel, px=layer.footprint_px(c),
                ch=c.out_channels, c0=c.channels[0], c1=c.channels[1] - 1) for c in convs]
    # hover: the cell's pixels, and every kernel that reads it with its channels
    readers = np.empty(smallest.shape, dtype=object)
    for i, j in np.ndindex(smallest.shape):
        k = smallest[i, j]
        readers[i, j] = "" if np.isnan(k) else "<br>".join(labels[int(k):])
    cy, cx = np.meshgrid(ys, xs, indexing="ij")
    outside = (cy < 0) | (cx < 0) | (cy + unit > height_px) | (cx + unit > width_px)
    where = np.where(outside, t("cf_scale_padding", lang), t("cf_scale_image", lang))
    custom = np.stack([cx, cx + unit - 1, cy, cy + unit - 1, readers, where], axis=-1)
    scale = []
    for k in range(n):
        color = _KERNEL_COLORS[k % len(_KERNEL_COLORS)]
        scale += [[k / n, color], [(k + 1) / n, color]]
    fig = PlainFigure().add_trace(dict(
        type="heatmap", z=smallest, x=xs + unit / 2, y=ys + unit / 2, customdata=custom, colorscale=scale,
        zmin=-0.5, zmax=n - 0.5, opacity=0.45, hoverongaps=False,
        colorbar=dict(colorbar(t("cf_scale_colorbar", lang)), tickvals=list(range(n)),
                      ticktext=labels),
        hovertemplate=t("hover_cf_scale", lang) + "<extra></extra>"))
    for k, (by0, bx0, by1, bx1) in enumerate(boxes):
        fig.add_trace(dict(
            type="scatter", x=[bx0, bx1, bx1, bx0, bx0], y=[by0, by0, by1, by1, by0], mode="lines",
            line=dict(color=_KERNEL_COLORS[k % len(_KERNEL_COLORS)], width=3), hoverinfo="skip",
            showlegend=False))
    fig.add_layout_image(dict(source=image_data_uri(image), x=0, y=0,
                              sizex=width_px, sizey=height_px, sizing="stretch", layer="below"))
    tp = layer.token_px
    r, c = query
    fig.add_shape(type="rect", x0=c * tp, x1=(c + 1) * tp, y0=r * tp, y1=(r + 1) * tp,
                  line=dict(color=QUERY_COLOR, width=2, dash="dot"))
    fig.add_shape(type="rect", x0=0, x1=width_px, y0=0, y1=height_px,
                  line=dict(color="#555", width=1))
    # Zoom to the footprints with a margin of half the largest one; where a footprint
    # reaches past the border, the view extends into the (white) zero padding.
    side = max(kernels_px)
    x_lo, x_hi = max(min(0, xs[0]), xs[0] - side // 2), min(max(width_px, xs[-1] + unit),
                                                             xs[-1] + unit + side // 2)
    y_lo, y_hi = max(min(0, ys[0]), ys[0] - side // 2), min(max(height_px, ys[-1] + unit),
                                                             ys[-1] + unit + side // 2)
    fig.update_xaxes(range=[x_lo, x_hi], showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(range=[y_hi, y_lo], showgrid=False, zeroline=False, scaleanchor="x",
                     constrain="domain")
    if layer.stage == 0:
        source = t("cf_layer_embed", lang)
    else:
        source = t("cf_layer_merge", lang, a=layer.stage - 1, b=layer.stage)
    title = t("fig_cf_scale", lang, stage=stage, r=r, c=c, source=source, n=n,
              stride=layer.stride, unit=layer.input_px, tp=tp,
              kernels=" / ".join(str(px) for px in kernels_px), ch=layer.out_channels)
    return base_layout(fig, title, t("x_pixels", lang), t("y_pixels", lang), height=480).figure()


def _slot_labels(analysis: CrossFormerAnalysis, stage: int, block: int, group: int) -> list[str]:
    members = analysis.block(stage, block).members(group)
    return [f"{i}: ({r},{c})" if r >= 0 else f"{i}: pad" for i, (r, c) in enumerate(members)]


def logit_split_figure(analysis: CrossFormerAnalysis, stage: int, block: int, group: int,
                       head: int | None, query_slot: int | None = None,
                       lang: str = "en") -> go.Figure:
    """What the softmax sees in one group, term by term: content q·kᵀ·scale + position bias
    (DPB) + padding mask → probabilities; the clicked token's row outlined."""
    item = analysis.block(stage, block)
    content, bias, mask, probs = analysis.logit_split(stage, block, group, head)
    bias_name = {"dpb": t("cf_dpb_bias", lang), "rpb": t("rpb_bias", lang),
                 "none": t("cf_no_bias", lang)}[item.bias_source]
    title = t("fig_cf_logit_split", lang, stage=stage, block=block,
              kind=kind_name(item.kind, item.fallback, lang), group=group,
              n=item.layout.tokens_per_group, head=head_name(item.heads, head, lang))
    if item.mask is None:
        title += t("cf_split_no_padding", lang)
    else:
        title += t("cf_split_padding", lang, hp=item.layout.padded_height,
                   wp=item.layout.padded_width)
    return logit_split_panels(content, bias, mask, probs,
                              _slot_labels(analysis, stage, block, group), title, lang,
                              bias_name=bias_name, mask_min=NEG_INF, query_slot=query_slot)
