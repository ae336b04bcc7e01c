"""The explanation lens's figures: the methods' maps side by side over the image, the deletion
and insertion curves, and the sanity check's correlations. Plain dicts (``PlainFigure``)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.lenses.explain.compute import METHODS, ExplainAnalysis, Faithfulness, auc
from explorer.lenses.plotting import PlainFigure, base_layout, colorbar, image_data_uri
from explorer.ui.i18n import t

# one colour per method, the same in every figure (random in grey: the baseline)
METHOD_COLOURS = {"attention": "#1f77b4", "rollout": "#ff7f0e", "gae": "#2ca02c", "gradcam": "#d62728",
                  "attnlrp": "#9467bd", "random": "#7f7f7f"}


def method_name(method: str, lang: str) -> str:
    return t(f"method_{method}", lang)


def scaled(values: np.ndarray) -> np.ndarray:
    """A map on 0–1 (min to max), so that maps of different units share one colour scale."""
    values = np.asarray(values, dtype=np.float64)
    span = np.ptp(values)
    return np.zeros_like(values) if span == 0 else (values - values.min()) / span


def maps_figure(analysis: ExplainAnalysis, target_name: str, scale: str = "Viridis", lang: str = "en",
                model_name: str | None = None) -> go.Figure:
    """Every method's map over the image the model saw, 2 × 3 panels, one colour bar; the title
    led by the model's name when two models stand side by side."""
    methods = analysis.methods
    cols = min(3, len(methods))
    rows = (len(methods) + cols - 1) // cols
    fig = PlainFigure(rows=rows, cols=cols, subplot_titles=[method_name(m, lang) for m in methods],
                      horizontal_spacing=0.04, vertical_spacing=0.1)
    image = analysis.model_image
    height_px, width_px = image.shape[:2]
    ph, pw = analysis.patch_size
    h, w = analysis.grid
    r, c = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    source = image_data_uri(image)
    prefix = analysis.num_prefix_tokens
    for i, method in enumerate(methods):
        row, col = divmod(i, cols)
        raw = analysis.maps[method]
        custom = np.stack([r, c, prefix + r * w + c, raw], axis=-1)
        fig.add_trace(dict(type="heatmap", z=scaled(raw), x=(np.arange(w) + 0.5) * pw, y=(np.arange(h) + 0.5) * ph,
                           customdata=custom, coloraxis="coloraxis", opacity=0.65, meta=method_name(method, lang),
                           hovertemplate=t("hover_ex", lang)), row=row + 1, col=col + 1)
        fig.add_layout_image(dict(source=source, x=0, y=0, sizex=width_px, sizey=height_px, sizing="stretch",
                                  layer="below"), row=row + 1, col=col + 1)
        refs = fig.refs(row + 1, col + 1)
        fig.update_xaxes(range=[0, width_px], showgrid=False, showticklabels=False, constrain="domain",
                         row=row + 1, col=col + 1)
        fig.update_yaxes(range=[height_px, 0], showgrid=False, showticklabels=False, constrain="domain",
                         scaleanchor=refs["xref"], row=row + 1, col=col + 1)
    for n in range(len(methods) + 1, rows * cols + 1):  # an empty cell shows nothing
        row, col = divmod(n - 1, cols)
        fig.update_xaxes(visible=False, row=row + 1, col=col + 1)
        fig.update_yaxes(visible=False, row=row + 1, col=col + 1)
    fig.update_layout(coloraxis=dict(colorscale=scale, cmin=0, cmax=1, colorbar=colorbar(t("ex_scaled", lang))))
    title = t("fig_ex_maps", lang, target=target_name)
    fig = base_layout(fig, title if model_name is None else f"{model_name} · {title}", "", "", height=260 * rows + 60)
    # one short axis name per figure, on the bottom-left panel: the panels are small
    fig.update_xaxes(title_text=t("ex_x", lang), row=rows, col=1)
    fig.update_yaxes(title_text=t("ex_y", lang), row=rows, col=1)
    return fig.figure()


def curves_figure(measured: Faithfulness, target_name: str, lang: str = "en") -> go.Figure:
    """Deletion and insertion curves of every method, side by side; each trace's name carries
    its AUC."""
    fig = PlainFigure(rows=1, cols=2, subplot_titles=[t("ex_deletion", lang), t("ex_insertion", lang)],
                      horizontal_spacing=0.1)
    fractions = np.linspace(0, 1, measured.steps + 1)
    for col, kind in enumerate(("deletion", "insertion"), start=1):
        for i, (method, curve) in enumerate(getattr(measured, kind).items()):
            name = f"{method_name(method, lang)} · AUC {auc(curve):.3f}"
            group = dict(legendgrouptitle=dict(text=t(f"ex_{kind}_short", lang))) if i == 0 else {}
            fig.add_trace(dict(type="scatter", mode="lines+markers", x=fractions, y=curve, name=name,
                               meta=name, legendgroup=kind, **group,
                               line=dict(color=METHOD_COLOURS.get(method), dash="dot" if method == "random" else "solid"),
                               hovertemplate=t("hover_ex_curve", lang)), row=1, col=col)
        fig.update_xaxes(range=[0, 1], tickformat=".0%", row=1, col=col)
        fig.update_yaxes(range=[0, 1.02], row=1, col=col)
    fig = base_layout(fig, t("fig_ex_curves", lang, target=target_name, steps=measured.steps),
                      t("ex_fraction", lang), t("ex_probability", lang), height=420)
    fig.update_layout(legend=dict(orientation="h", y=-0.25, font=dict(size=13)), margin=dict(b=120))
    fig.update_annotations(font_size=14)
    return fig.figure()


def sanity_figure(correlations: np.ndarray, methods: tuple[str, ...] = METHODS, lang: str = "en") -> go.Figure:
    """Per method, Spearman's ρ between its map and the trained model's, against the number of
    blocks randomised (from the last one down)."""
    fig = PlainFigure()
    blocks = np.arange(correlations.shape[0])  # 0: none randomised yet
    for j, method in enumerate(methods):
        name = method_name(method, lang)
        fig.add_trace(dict(type="scatter", mode="lines+markers", x=blocks, y=correlations[:, j], name=name,
                           meta=name, line=dict(color=METHOD_COLOURS[method], dash="dot" if method == "random" else "solid"),
                           hovertemplate=t("hover_ex_sanity", lang)))
    fig.add_shape(type="line", x0=-0.5, x1=blocks[-1] + 0.5, y0=0.9, y1=0.9, line=dict(color="#999", dash="dash"))
    fig = base_layout(fig, t("fig_ex_sanity", lang), t("ex_randomised", lang), t("ex_spearman", lang), height=400)
    fig.update_xaxes(dtick=1, range=[-0.5, blocks[-1] + 0.5])
    fig.update_yaxes(range=[-1.05, 1.05])
    return fig.figure()
