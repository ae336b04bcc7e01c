"""The step-through's figure and formula line for each step (plotly and text; nothing runs a
model): vectors as bars over their dimensions, per-key values on the image where the keys are
patches, and the top keys in the text."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.lenses.attention.step import STEPS, HeadStep
from explorer.lenses.plotting import DIVERGING_SCALE, base_layout, colorbar, overlay_figure
from explorer.ui.i18n import t

HEIGHT = 330


def _bars(traces: list[tuple[str, np.ndarray]], title: str, lang: str, highlight: slice | None = None) -> go.Figure:
    fig = go.Figure()
    dims = np.arange(traces[0][1].size)
    for i, (name, values) in enumerate(traces):
        color = values if i == 0 else None
        opacity = None
        if highlight is not None:  # this head's part of the concatenation stands out
            opacity = [1.0 if highlight.start <= d < highlight.stop else 0.35 for d in dims]
        bound = float(np.abs(values).max()) or 1.0
        marker = dict(color=color, colorscale=DIVERGING_SCALE, cmin=-bound, cmax=bound, opacity=opacity,
                      colorbar=colorbar(t("step_value", lang))) if i == 0 else dict(color="rgba(90,90,90,0.55)")
        fig.add_bar(x=dims, y=values, name=name, marker=marker,
                    hovertemplate=f"{name} · {t('step_dimension', lang)} %{{x}}: %{{y:.4f}}<extra></extra>")
    fig.update_layout(barmode="group", showlegend=len(traces) > 1, legend=dict(orientation="h", y=-0.3))
    return base_layout(fig, title, t("step_dimension", lang), t("step_value", lang), height=HEIGHT)


def _keys_on_image(step: HeadStep, values: np.ndarray, title: str, what: str, image: np.ndarray,
                   patch_size: tuple[int, int], lang: str, diverging: bool) -> go.Figure:
    grid = values[step.num_prefix_tokens:].reshape(step.grid)
    options = dict(colorscale=DIVERGING_SCALE, zmin=-float(np.abs(grid).max()), zmax=float(np.abs(grid).max())) \
        if diverging else {}
    query = step.query - step.num_prefix_tokens
    return overlay_figure(image, grid, patch_size, title=title, colorbar_title=what, value_name=what,
                          token_offset=step.num_prefix_tokens, height=HEIGHT + 60,
                          highlight=divmod(query, step.grid[1]) if query >= 0 else None,
                          x_title=t("x_pixels", lang), y_title=t("y_pixels", lang), **options)


def step_figure(step: HeadStep, index: int, image: np.ndarray, patch_size: tuple[int, int], lang: str) -> go.Figure:
    name = STEPS[index]
    what = t(f"what_{name}", lang)
    n = index + 1
    top = int(np.argmax(step.probs))
    if name in ("dot", "scale", "softmax"):
        values = {"dot": step.dot, "scale": step.logits, "softmax": step.probs}[name]
        return _keys_on_image(step, values, t("fig_step_keys", lang, n=n, what=what), what, image, patch_size, lang,
                              diverging=name != "softmax")
    vectors = {
        "x": [("x", step.x)],
        "qkv": [("q", step.q), (f"k {step.key_labels[top]}", step.k[top]), (f"v {step.key_labels[top]}", step.v[top])],
        "out": [("o", step.out)],
        "concat": [("concat", step.heads_out)],
        "proj": [("W_o·concat + b_o", step.projected)],
        "residual": [(t("what_residual", lang), step.residual), ("token", step.block_input)],
    }[name]
    dh = step.q.size
    highlight = slice(step.head * dh, (step.head + 1) * dh) if name == "concat" else None
    title = t("fig_step_vector", lang, n=n, what=what, count=vectors[0][1].size)
    return _bars(vectors, title, lang, highlight)


def _top_list(step: HeadStep, values: np.ndarray, n: int = 5) -> str:
    return ", ".join(f"{step.key_labels[i]} {values[i]:.3f}" for i, _ in step.top_keys(n))


def step_markdown(step: HeadStep, index: int, lang: str, mean_head: bool = False) -> str:
    """The step's formula line with its numbers, under where and what is stepped."""
    name = STEPS[index]
    top = int(np.argmax(step.probs))
    dh = step.q.size
    fields = {
        "x": dict(c=step.x.size, mean=float(step.x.mean()), std=float(step.x.std())),
        "qkv": dict(top=step.key_labels[top], qn=float(np.linalg.norm(step.q))),
        "dot": dict(top=step.key_labels[int(np.argmax(step.dot))], value=float(step.dot.max())),
        "scale": dict(scale=step.scale, dh=dh, value=float(step.logits.max()), extra=t("step_no_bias", lang)),
        "softmax": dict(total=float(step.probs.sum()), tops=_top_list(step, step.probs)),
        "out": dict(dh=dh, norm=float(np.linalg.norm(step.out))),
        "concat": dict(heads=step.heads_out.size // dh, c=step.heads_out.size),
        "proj": dict(gap=float(np.abs(step.projected - step.model_projected).max())),
        "residual": dict(change=float(np.linalg.norm(step.residual - step.block_input)),
                         token=float(np.linalg.norm(step.block_input)),
                         gap=float(np.abs(step.residual - step.model_residual).max())),
    }[name]
    where = t("step_where", lang, layer=step.layer, head=step.head, query=step.query,
              name=step.key_labels[step.query], keys=step.num_keys, dh=dh)
    lines = [where, t(f"step_{name}", lang, **fields)]
    if name in ("dot", "scale", "softmax") and step.num_prefix_tokens:  # the keys the image cannot show
        values = {"dot": step.dot, "scale": step.logits, "softmax": step.probs}[name]
        lines.append(t("step_prefix_keys", lang, values=", ".join(
            f"{step.key_labels[i]} {values[i]:.3f}" for i in range(step.num_prefix_tokens))))
    if mean_head:
        lines.insert(0, t("step_mean_head", lang))
    return "\n\n".join(lines)
