"""The MAE lab tab: hide patches of the image (random as in the paper, block-wise, grid, or
painted by clicking patches), reconstruct them with a masked autoencoder, and see the official
4-panel figure and the per-patch error. The mask is the only input that re-runs the model; the
norm-pix "leak" toggle and the language switch redraw from the cached result."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.data_classes import FileData

from explorer.core import arguments
from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage
from explorer.core.results import RESULTS
from explorer.core.weights import LoadedModel
from explorer.lenses.registry import entries_for_lens
from explorer.lenses.mae import figures
from explorer.lenses.mae.compute import STRATEGIES, MAEResult, reconstruct
from explorer.lenses.plotting import clicked_patch
from explorer.ui.i18n import t
from explorer.core.text import numbered
from explorer.lenses.registry import lens_model, model_for_lens
from explorer.ui.api import arrays_reply
from explorer.ui.uploads import open_uploaded_image
from explorer.ui.widgets import TabHooks, PageContext, by_component, picture_file, banner_markdown, model_controls, user_errors, with_progress



@dataclass
class Controls:
    image: LoadedImage | None
    model_key: str
    allow_download: bool
    strategy: str
    ratio: float
    seed: int
    leak: bool
    painted: list[int] | None  # the patches hidden now (gr.State): what a click edits
    lang: str

    def analysis(self, strategy: str | None = None, painted: tuple[int, ...] | None = None
                 ) -> tuple[LoadedModel, MAEResult]:
        if self.image is None:
            raise UserFacingError(t("need_image", "en"), t("need_image", "zh"))
        strategy = arguments.choice(strategy or self.strategy or "random", STRATEGIES,
                                    (t("mae_strategy", "en"), t("mae_strategy", "zh")))
        painted = tuple(sorted(painted if painted is not None else self.painted or ())) \
            if strategy == "painted" else ()
        ratio = arguments.fraction(self.ratio, 0.0, 1.0, (t("mae_ratio", "en"), t("mae_ratio", "zh")))
        seed = arguments.seed(0 if self.seed is None else self.seed)
        loaded = lens_model("mae", self.model_key, self.allow_download)
        # the painted patches matter only to the painted mask; ratio and seed to the others
        key = ("mae", loaded.shown.key, loaded.weights_id, self.image.digest, strategy,
               painted if strategy == "painted" else (ratio, seed))
        image = self.image
        return loaded, RESULTS.get_or_create(key, lambda: reconstruct(loaded, image, strategy, ratio, seed, painted))


def summary_markdown(r: MAEResult, leak: bool, lang: str) -> str:
    visible = r.num_patches - r.hidden_count
    lines = [t("mae_summary_mask", lang, k=r.hidden_count, n=r.num_patches, ratio=r.actual_ratio, v=visible),
             t("mae_summary_loss", lang, loss=r.loss)]
    if r.hidden_count and (not r.norm_pix_loss or leak):
        lines.append(t("mae_summary_pixels", lang, mse=r.masked_mse, base=r.baseline_mse,
                       ratio=r.masked_mse / max(r.baseline_mse, 1e-12)))
    if r.norm_pix_loss:
        lines.append(t("mae_leak_warning" if leak else "mae_normpix_note", lang))
    if r.strategy == "painted":
        lines.insert(0, t("mae_painted_note", lang))  # first: it says why two controls are off
    elif r.strategy == "grid":
        lines.append(t("mae_grid_note", lang))
    return "\n\n".join(lines)


def steps_markdown(r: MAEResult, lang: str) -> str:
    return numbered(r.steps, lang, bullet="-")


def render(loaded: LoadedModel, r: MAEResult, leak: bool, lang: str) -> dict:
    """Every output of the tab by name."""
    return {
        "banner": banner_markdown(loaded, lang),
        "summary": summary_markdown(r, leak, lang),
        "picker": picture_file(figures.mask_picker_image(r.model_image, r.grid, r.mask)),
        "panels_plot": figures.panels_figure(r, leak, lang),
        "error_plot": figures.error_figure(r, leak, lang),
        "steps": steps_markdown(r, lang),
        "painted": [int(i) for i in r.mask.nonzero()[0]],  # the hidden patches
        "strategy": gr.update(value=r.strategy),
        "leak": gr.update(visible=r.norm_pix_loss),
        # a painted mask ignores the ratio and the seed: they are greyed out, the summary says why
        "ratio": gr.update(interactive=r.strategy != "painted"),
        "seed": gr.update(interactive=r.strategy != "painted"),
    }


@user_errors
def refresh(c: Controls) -> dict:
    loaded, result = c.analysis()
    return render(loaded, result, bool(c.leak), c.lang)


@user_errors
def toggle_patch(c: Controls, xy: tuple[float, float]) -> dict:
    """A click on the picker hides a visible patch or shows a hidden one: the current mask,
    whatever made it, becomes a painted one."""
    _, current = c.analysis()
    row, col = clicked_patch(current.model_image, current.grid, xy)
    painted = set(int(i) for i in current.mask.nonzero()[0]) ^ {row * current.grid[1] + col}
    loaded, result = c.analysis(strategy="painted", painted=tuple(painted))
    return render(loaded, result, bool(c.leak), c.lang)


@user_errors
def clear_painted(c: Controls) -> dict:
    loaded, result = c.analysis(strategy="painted", painted=())
    return render(loaded, result, bool(c.leak), c.lang)


def strategy_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"mae_strategy_{s}", lang), s) for s in STRATEGIES]


def build(ctx: PageContext) -> None:
    entries = entries_for_lens("mae")
    if not entries:
        return
    tr = ctx.translations
    with gr.Tab(t("tab_mae", "en"), id="mae") as tab:
        tr.add(tab, "tab_mae")
        model, _geometry, allow, banner = model_controls(tr, entries, entries[0].key, "mae", geometries=("model",))
        tr.add(gr.Markdown(t("mae_help", "en")), "mae_help", "value")
        with gr.Row():
            with gr.Column(scale=2):
                strategy = tr.add(gr.Radio(strategy_choices("en"), value="random", label=t("mae_strategy", "en"),
                                           elem_id="mae-strategy"),
                                  update=lambda lang: dict(label=t("mae_strategy", lang),
                                                           choices=strategy_choices(lang)))
                ratio = tr.add(gr.Slider(0.05, 0.95, value=0.75, step=0.05, label=t("mae_ratio", "en"),
                                         elem_id="mae-ratio"), "mae_ratio")
                seed = tr.add(gr.Number(value=0, precision=0, label=t("mae_seed", "en"), elem_id="mae-seed"),
                              "mae_seed")
                leak = tr.add(gr.Checkbox(value=False, label=t("mae_leak", "en"), visible=False,
                                          elem_id="mae-leak"), "mae_leak")
                clear = tr.add(gr.Button(t("mae_clear", "en"), size="sm", elem_id="mae-clear"), "mae_clear", "value")
                summary = gr.Markdown(elem_id="mae-summary")
                steps = gr.Markdown()
            with gr.Column(scale=3):
                picker = tr.add(gr.Image(label=t("mae_picker", "en"), interactive=False, type="pil",
                                         elem_id="mae-picker", buttons=[]), "mae_picker")
        panels_plot = gr.Plot(elem_id="mae-panels-plot", show_label=False)
        tr.add(gr.Markdown(t("mae_caption", "en"), elem_classes="caption"), "mae_caption", "value")
        error_plot = gr.Plot(elem_id="mae-error-plot", show_label=False)
        painted = gr.State([])

    controls = [ctx.image, model, allow, strategy, ratio, seed, leak, painted, ctx.lang]
    parts = dict(banner=banner, summary=summary, picker=picker, panels_plot=panels_plot, error_plot=error_plot,
                 steps=steps, painted=painted, strategy=strategy, leak=leak, ratio=ratio, seed=seed)
    outputs = list(parts.values())
    redraw, toggle, clear_all = (by_component(parts, step) for step in (refresh, toggle_patch, clear_painted))

    def analyse(*values, progress=None):
        return redraw(Controls(*values))

    def on_change(*values):
        return redraw(Controls(*values))

    def on_click(evt: gr.SelectData, *values):
        return toggle(Controls(*values), tuple(evt.index))

    def on_clear(*values):
        return clear_all(Controls(*values))

    for trigger in (model.change, allow.input):
        trigger(with_progress(analyse), controls, outputs, api_visibility="private")
    for trigger in (strategy.input, ratio.input, seed.input):
        trigger(on_change, controls, outputs, api_visibility="private", show_progress="hidden")
    leak.input(on_change, controls, outputs, api_visibility="private", show_progress="hidden")
    picker.select(on_click, controls, outputs, api_visibility="private", show_progress="hidden")
    clear.click(on_clear, controls, outputs, api_visibility="private", show_progress="hidden")
    ctx.lenses.append(TabHooks("mae", tab, analyse, on_change, controls, outputs, outputs))


def api(image: FileData, model: str, mask_ratio: float = 0.75, mask_strategy: str = "random", seed: int = 0,
        arrays: str = "") -> dict:
    """The MAE lab on an uploaded image, as `python -m explorer export mae` writes it: the official
    ``mask`` (L,) (1 = hidden), ``pred`` (L, p·p·3) and ``reconstruction`` (3, H, W) in the model's
    normalised space, the four panels and the per-patch errors. ``mask_strategy``: random (the
    paper's), block or grid. Small arrays come by default; name others in ``arrays``."""
    from explorer.lenses.mae.compute import export_arrays

    entry = model_for_lens("mae", model)
    strategy = arguments.choice(mask_strategy, ("random", "block", "grid"), ("mask_strategy", "mask_strategy（掩码方式）"))
    controls = Controls(open_uploaded_image(image), entry.key, False, strategy, mask_ratio, seed, False, None, "en")
    loaded, result = controls.analysis()
    return arrays_reply(loaded, export_arrays(result), arrays, hidden=result.hidden_count,
                        patches=result.num_patches, loss=float(result.loss))
