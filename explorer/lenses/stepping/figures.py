"""The step-through's figure and formula line for each step (plotly and text; nothing runs a
model): vectors as bars over their dimensions, per-key values on the image where the keys sit
(a Swin window's keys where the cyclic shift took them from, a GSA key on its sub-sampled cell),
and in the text the keys the image cannot show and the top keys."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explorer.lenses.plotting import DIVERGING_SCALE, base_layout, colorbar, overlay_figure
from explorer.lenses.stepping.compute import HeadStep
from explorer.ui.i18n import STRINGS, t

# the order the view walks the steps in (text keys: step_<name>, what_<name>)
STEPS = ("x", "qkv", "dot", "scale", "bias", "mask", "softmax", "out", "concat", "proj", "residual")
KEY_STEPS = {"dot": "dot", "scale": "logits", "bias": "bias", "mask": "mask", "softmax": "probs"}
HEIGHT = 330


def _family_text(key: str, family: str, lang: str, **fields) -> str:
    """``key_<family>`` where the family has its own wording (Twins' two kinds share one), else ``key``."""
    for name in (f"{key}_{family}", f"{key}_{family.split('_')[0]}"):
        if name in STRINGS:
            return t(name, lang, **fields)
    return t(key, lang, **fields)


def _bars(traces: list[tuple[str, np.ndarray]], title: str, lang: str, highlight: slice | None = None) -> go.Figure:
    fig = go.Figure()
    dims = np.arange(traces[0][1].size)
    for i, (name, values) in enumerate(traces):
        if i == 0:
            opacity = None
            if highlight is not None:  # this head's part of the concatenation stands out
                opacity = [1.0 if highlight.start <= d < highlight.stop else 0.35 for d in dims]
            bound = float(np.abs(values).max()) or 1.0
            marker = dict(color=values, colorscale=DIVERGING_SCALE, cmin=-bound, cmax=bound, opacity=opacity,
                          colorbar=colorbar(t("step_value", lang)))
        else:
            marker = dict(color="rgba(90,90,90,0.55)")
        fig.add_bar(x=dims, y=values, name=name, marker=marker,
                    hovertemplate=f"{name} · {t('step_dimension', lang)} %{{x}}: %{{y:.4f}}<extra></extra>")
    fig.update_layout(barmode="group", showlegend=len(traces) > 1, legend=dict(orientation="h", y=-0.3))
    return base_layout(fig, title, t("step_dimension", lang), t("step_value", lang), height=HEIGHT)


def _on_image(step: HeadStep) -> np.ndarray:
    """Which keys have a place on the image (prefix tokens and padding have none)."""
    return step.key_positions[:, 0] >= 0


def key_map(step: HeadStep, values: np.ndarray) -> np.ndarray:
    """(rows, cols) of the key grid: each key's value at its position, NaN where no key is."""
    grid = np.full(step.key_grid, np.nan, dtype=np.float32)
    on = _on_image(step)
    grid[step.key_positions[on, 0], step.key_positions[on, 1]] = values[on]
    return grid


def _query_cell(step: HeadStep) -> tuple[int, int] | None:
    if step.query_position is None:
        return None
    (r, c), (h, w), (kh, kw) = step.query_position, step.grid, step.key_grid
    return r * kh // h, c * kw // w  # GSA: the sub-sampled cell the query lies in


def _keys_on_image(step: HeadStep, values: np.ndarray, title: str, what: str, image: np.ndarray,
                   lang: str, diverging: bool) -> go.Figure:
    grid = key_map(step, values)
    finite = grid[np.isfinite(grid)]
    options = {}
    if diverging:
        bound = float(np.abs(finite).max()) if finite.size else 1.0
        options = dict(colorscale=DIVERGING_SCALE, zmin=-(bound or 1.0), zmax=bound or 1.0)
    cell = (image.shape[0] / step.key_grid[0], image.shape[1] / step.key_grid[1])
    return overlay_figure(image, grid, cell, title=title, colorbar_title=what, value_name=what,
                          token_offset=None, height=HEIGHT + 60, highlight=_query_cell(step),
                          x_title=t("x_pixels", lang), y_title=t("y_pixels", lang), **options)


def step_figure(step: HeadStep, index: int, image: np.ndarray, lang: str) -> go.Figure:
    """Step ``index`` (0-based in ``STEPS``) of ``step`` over ``image``, the picture the model saw."""
    name = STEPS[index]
    what = t(f"what_{name}", lang)
    n = index + 1
    if name in KEY_STEPS:
        values = getattr(step, KEY_STEPS[name])
        return _keys_on_image(step, values, t("fig_step_keys", lang, n=n, what=what), what, image, lang,
                              diverging=name != "softmax")
    top = int(np.argmax(step.probs))
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


def _top(step: HeadStep, values: np.ndarray, n: int = 5, offsets: bool = False) -> str:
    order = np.argsort(-values, kind="stable")[:n]
    parts = []
    for i in order:
        where = step.key_labels[i]
        if offsets and step.bias_offset is not None:
            dy, dx = (int(v) for v in step.bias_offset[i])
            where += f" Δ=({dy}, {dx})"
            if step.bias_index is not None:
                where += f" B[{int(step.bias_index[i])}]"
        parts.append(f"{where} {values[i]:.3f}")
    return ", ".join(parts)


MASK_WHY = {"swin": "swin", "swinv2": "swin", "crossformer": "crossformer", "vit": "vit"}
UNMASKED_WHY = {"swin": "swin", "swinv2": "swin", "twins_lsa": "twins"}


def _mask_line(step: HeadStep, n: int, lang: str) -> str:
    masked = step.mask < 0
    if not masked.any():
        why = UNMASKED_WHY.get(step.family)
        return t("step_mask_none", lang, n=n, keys=step.num_keys, why=t(f"step_mask_none_{why}", lang) if why else "")
    low = float(step.mask[masked].min())
    value = "−∞" if not np.isfinite(low) else f"{low:g}".replace("-", "−")
    why = MASK_WHY.get(step.family)
    return t("step_mask", lang, n=n, masked=int(masked.sum()), keys=step.num_keys, value=value,
             why=t(f"step_mask_{why}", lang) if why else "")


def step_markdown(step: HeadStep, index: int, lang: str, place: str | None = None, mean_head: bool = False) -> str:
    """The step's formula line with its numbers, under where and what is stepped (``place``:
    e.g. "Stage 2, block 1"; by default the layer)."""
    name = STEPS[index]
    n = index + 1
    top = int(np.argmax(step.probs))
    dh = step.q.size
    family = step.family
    if name == "mask":
        line = _mask_line(step, n, lang)
    elif name == "bias" and step.bias_index is None:
        line = t("step_bias_none", lang, n=n)
    else:
        fields = {
            "x": lambda: dict(c=step.x.size, mean=float(step.x.mean()), std=float(step.x.std())),
            "qkv": lambda: dict(top=step.key_labels[top], qn=float(np.linalg.norm(step.q))),
            "dot": lambda: dict(top=step.key_labels[int(np.argmax(step.dot))], value=float(step.dot.max())),
            "scale": lambda: dict(scale=step.scale, dh=dh, value=float(step.logits.max())),
            "bias": lambda: dict(tops=_top(step, step.bias, 3, offsets=True)),
            "softmax": lambda: dict(total=float(step.probs.sum()), tops=_top(step, step.probs)),
            "out": lambda: dict(dh=dh, norm=float(np.linalg.norm(step.out))),
            "concat": lambda: dict(heads=step.heads_out.size // dh, c=step.heads_out.size),
            "proj": lambda: dict(gap=float(np.abs(step.projected - step.model_projected).max())),
            "residual": lambda: dict(change=float(np.linalg.norm(step.residual - step.block_input)),
                                     token=float(np.linalg.norm(step.block_input)),
                                     gap=float(np.abs(step.residual - step.model_residual).max()),
                                     added=_family_text("step_added", family, lang)),
        }[name]()
        line = _family_text(f"step_{name}", family, lang, n=n, **fields)
    place = place or t("step_layer", lang, layer=step.layer)
    name_of_query = step.key_labels[step.query] if family == "vit" else "({}, {})".format(*step.query_position)
    where = t("step_where", lang, place=place, head=step.head, query=step.query, name=name_of_query,
              keys=step.num_keys, dh=dh)
    if family == "twins_gsa":
        where += t("step_where_gsa", lang, keys=step.num_keys, rows=step.key_grid[0], cols=step.key_grid[1])
    elif family != "vit":
        kind = "swin" if family.startswith("swin") else family
        where += t("step_where_window", lang, keys=step.num_keys, what=t(f"step_window_{kind}", lang))
    lines = [where, line]
    off = ~_on_image(step)
    if name in KEY_STEPS and off.any():  # the keys the image cannot show (prefix tokens, padding)
        values = getattr(step, KEY_STEPS[name])
        shown = [f"{step.key_labels[i]} {values[i]:.3f}" for i in np.flatnonzero(off)[:8]]
        more = int(off.sum()) - len(shown)
        lines.append(t("step_offstage_keys", lang, values=", ".join(shown) + (f", … (+{more})" if more > 0 else "")))
    if mean_head:
        lines.insert(0, t("step_mean_head", lang))
    return "\n\n".join(lines)

