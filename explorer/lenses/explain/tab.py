"""The explanation tab: pick a target class, see every method's map side by side, and measure
them on this image (deletion/insertion, the sanity check) with a button each.

A new image, model or target runs one forward and backward pass; the colour scale and the
language redraw from the cached maps; each measurement runs once per (image, model, target)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np
from gradio.data_classes import FileData

from explorer.core import arguments
from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage
from explorer.core.preprocess import check_geometry
from explorer.core.results import RESULTS
from explorer.core.text import numbered
from explorer.core.weights import LoadedModel
from explorer.lenses.explain import figures
from explorer.lenses.explain.compute import (DEFAULT_STEPS, ExplainAnalysis, Faithfulness, analyze_image,
                                             export_arrays, faithfulness, is_flat, linked_target, sanity)
from explorer.lenses.explain.export import MAX_STEPS
from explorer.lenses.explain.target import target_index
from explorer.lenses.plotting import SEQUENTIAL_SCALES
from explorer.lenses.registry import entries_for_lens, lens_model, model_for_lens
from explorer.ui.api import arrays_reply
from explorer.ui.i18n import class_label, predictions_label, t
from explorer.ui.uploads import open_uploaded_image
from explorer.ui.widgets import (PageContext, TabHooks, banner_markdown, by_component, model_controls, second_model_row,
                                 user_errors, with_progress)

LATEX = [{"left": "$", "right": "$", "display": False}]


@dataclass
class Controls:
    """The values of the tab's inputs, in the order of ``controls`` in ``build``."""

    image: LoadedImage | None
    model_key: str
    geometry: str
    allow_download: bool
    target: str | None  # a class index or name; empty: the top class
    scale: str
    steps: float | None
    compare: str | None  # a second model side by side ("" or None: none)
    lang: str

    def loaded(self, key: str | None = None) -> LoadedModel:
        return lens_model("explain", key or self.model_key, self.allow_download)

    def analysis(self) -> tuple[LoadedModel, ExplainAnalysis]:
        if self.image is None:
            raise UserFacingError(t("need_image", "en"), t("need_image", "zh"))
        loaded = self.loaded()
        names = loaded.class_names or ()
        target = target_index(self.target, names, _classes(loaded),
                              tuple(class_label(n, self.lang) for n in names))
        return loaded, self._maps(loaded, target)

    def _maps(self, loaded: LoadedModel, target: int | None) -> ExplainAnalysis:
        """The maps for ``target`` (None: the top class), one pass per (model, image, target)."""
        geometry = check_geometry(self.geometry or "model")
        key = ("explain", loaded.shown.key, loaded.weights_id, self.image.digest, geometry, target)
        image = self.image
        return RESULTS.get_or_create(key, lambda: analyze_image(loaded, image, geometry, target))

    def second(self, first: LoadedModel, analysis: ExplainAnalysis) -> tuple[LoadedModel, ExplainAnalysis, bool]:
        """The second model's maps on the same image, for the class linked to the first's target,
        and whether there was one (else its own top class)."""
        loaded = self.loaded(self.compare)
        target = linked_target(first.class_names, _classes(first), analysis.target, loaded.class_names,
                               _classes(loaded))
        return loaded, self._maps(loaded, target), target is not None

    def measure_key(self, loaded: LoadedModel, analysis: ExplainAnalysis, what: str) -> tuple:
        return ("explain-" + what, loaded.shown.key, loaded.weights_id, self.image.digest, self.geometry,
                analysis.target, self.step_count if what == "faithfulness" else None)

    def measured(self, loaded: LoadedModel, analysis: ExplainAnalysis, what: str):
        """The deletion/insertion curves ("faithfulness") or the sanity check's correlations
        ("sanity"), computed once per image, model, target (and steps)."""
        compute = {"faithfulness": lambda: faithfulness(loaded, analysis, self.step_count),
                   "sanity": lambda: sanity(loaded, analysis)}[what]
        return RESULTS.get_or_create(self.measure_key(loaded, analysis, what), compute)

    @property
    def step_count(self) -> int:
        return arguments.whole_number(DEFAULT_STEPS if self.steps is None else int(self.steps), 1, MAX_STEPS,
                                      (t("ex_steps", "en"), t("ex_steps", "zh")))


def _classes(loaded: LoadedModel) -> int:
    return int(getattr(loaded.model, "num_classes", 0))


def target_name(loaded: LoadedModel, index: int, lang: str) -> str:
    names = loaded.class_names or ()
    return class_label(names[index], lang) if index < len(names) else t("class_n", lang, n=index)


def target_choices(loaded: LoadedModel, analysis: ExplainAnalysis, lang: str) -> list[tuple[str, str]]:
    """The top-5 (as their names), and the class shown if it is another (typed in by name or index)."""
    choices = [(f"{target_name(loaded, p.index, lang)} · {p.probability:.1%}", str(p.index)) for p in analysis.predictions]
    if all(p.index != analysis.target for p in analysis.predictions):
        choices.append((target_name(loaded, analysis.target, lang), str(analysis.target)))
    return choices


def _verdict(measured: Faithfulness, lang: str) -> str:
    deletion, insertion = measured.auc("deletion"), measured.auc("insertion")
    best_d, best_i = measured.fastest_deletion, measured.fastest_insertion
    return t("ex_verdict", lang, deletion=figures.method_name(best_d, lang), d=deletion[best_d],
             insertion=figures.method_name(best_i, lang), i=insertion[best_i],
             rd=deletion.get("random", float("nan")), ri=insertion.get("random", float("nan")))


def _sanity_text(correlations, methods: tuple[str, ...], lang: str) -> str:
    flat = [figures.method_name(m, lang) for m, f in zip(methods, is_flat(correlations)) if f]
    sep = "、" if lang == "zh" else ", "
    return t("ex_flat", lang, methods=sep.join(flat)) if flat else t("ex_changed", lang)


def render(c: Controls, loaded: LoadedModel, analysis: ExplainAnalysis) -> dict:
    """Every output from the cached maps and any measurement already made (nothing runs)."""
    lang = c.lang
    name = target_name(loaded, analysis.target, lang)
    logits = analysis.logits.astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    out = {
        "banner": banner_markdown(loaded, lang),
        "predictions": predictions_label(analysis.predictions, lang) or None,
        "target_line": t("ex_target_line", lang, name=name, index=analysis.target, p=float(probs[analysis.target])),
        "target": gr.update(choices=target_choices(loaded, analysis, lang), value=str(analysis.target)),
        "maps_plot": figures.maps_figure(analysis, name, c.scale or "Viridis", lang),
        "steps_md": numbered(analysis.steps, lang, bullet="-"),
    }
    measured = RESULTS.get(c.measure_key(loaded, analysis, "faithfulness"))
    out["curves_plot"] = figures.curves_figure(measured, name, lang) if measured is not None else None
    out["verdict"] = _verdict(measured, lang) if measured is not None else t("ex_press_measure", lang)
    correlations = RESULTS.get(c.measure_key(loaded, analysis, "sanity"))
    out["sanity_plot"] = figures.sanity_figure(correlations, analysis.methods, lang) if correlations is not None else None
    out["sanity_text"] = _sanity_text(correlations, analysis.methods, lang) if correlations is not None else ""
    for note in analysis.notes:  # why a method is missing for this model
        out["target_line"] += "\n\n" + t(note, lang)
    return {**out, **second_outputs(c, loaded, analysis)}


def second_outputs(c: Controls, loaded: LoadedModel, analysis: ExplainAnalysis) -> dict:
    """The second model's maps for the class linked to the first's target (the same name, else
    the same index; else its own top class), with a line saying which; empty without one. Its own
    problems are said in its line, the first model's maps stay."""
    if not c.compare:
        return {"compare_line": "", "compare_maps_plot": None}
    try:
        other, second, linked = c.second(loaded, analysis)
    except UserFacingError as err:
        return {"compare_line": err.message(c.lang), "compare_maps_plot": None}
    name = target_name(other, second.target, c.lang)
    line = t("ex_compare_line", c.lang, model=other.shown.label(c.lang), name=name, index=second.target,
             how=t("ex_compare_same" if linked else "ex_compare_own_top", c.lang))
    notes = "".join("\n\n" + t(note, c.lang) for note in second.notes)
    return {"compare_line": f"{line}{notes}\n\n{banner_markdown(other, c.lang)}",
            "compare_maps_plot": figures.maps_figure(second, name, c.scale or "Viridis", c.lang,
                                                     model_name=other.shown.key)}


@user_errors
def run(c: Controls, progress=None) -> dict:
    if progress is not None:
        progress(0, desc=t("analysing", c.lang))
    loaded, analysis = c.analysis()
    return render(c, loaded, analysis)


@user_errors
def redraw(c: Controls) -> dict:
    if c.image is None:
        return {}
    loaded, analysis = c.analysis()
    return render(c, loaded, analysis)


@user_errors
def redraw_second(c: Controls) -> dict:
    """The second model was picked (or put back to none): its maps alone."""
    if c.image is None:
        return {}
    loaded, analysis = c.analysis()
    return second_outputs(c, loaded, analysis)


def measuring(what: str, label: str):
    """A button's step: measure the shown maps (``Controls.measured``), then draw everything."""
    def step(c: Controls, progress=None) -> dict:
        loaded, analysis = c.analysis()
        if progress is not None:
            progress(0, desc=t(label, c.lang))
        c.measured(loaded, analysis, what)
        return render(c, loaded, analysis)

    step.__name__ = step.__qualname__ = f"measure_{what}"  # for the log
    return user_errors(step)


measure, check = measuring("faithfulness", "ex_measure"), measuring("sanity", "ex_sanity")


def build(ctx: PageContext) -> None:
    entries = entries_for_lens("explain")
    if not entries:
        return
    tr = ctx.translations
    with gr.Tab(t("tab_explain", "en"), id="explain") as tab:
        tr.add(tab, "tab_explain")
        model, geometry, allow, banner = model_controls(tr, entries, entries[0].key, "ex")
        with gr.Row():
            with gr.Column(scale=2):
                target = tr.add(gr.Dropdown([], value=None, label=t("ex_target", "en"), info=t("ex_target_info", "en"),
                                            allow_custom_value=True, filterable=True, elem_id="ex-target"),
                                update=lambda lang: dict(label=t("ex_target", lang), info=t("ex_target_info", lang)))
                target_line = gr.Markdown(elem_id="ex-target-line")
                predictions = tr.add(gr.Label(label=t("predictions", "en"), num_top_classes=5,
                                              elem_id="ex-predictions"), "predictions")
                scale = tr.add(gr.Dropdown(list(SEQUENTIAL_SCALES), value="Viridis", label=t("colorscale", "en"),
                                           elem_id="ex-scale"), "colorscale")
                steps_md = gr.Markdown()
            with gr.Column(scale=5):
                maps_plot = gr.Plot(elem_id="ex-maps-plot", show_label=False)
        tr.add(gr.Markdown(t("ex_help", "en"), latex_delimiters=LATEX, elem_classes="caption"), "ex_help", "value")
        with gr.Row():
            steps = tr.add(gr.Slider(2, 50, value=DEFAULT_STEPS, step=1, label=t("ex_steps", "en"), scale=1,
                                     elem_id="ex-steps"), "ex_steps")
            measure_button = tr.add(gr.Button(t("ex_measure", "en"), variant="primary", scale=2,
                                              elem_id="ex-measure"), "ex_measure", "value")
            sanity_button = tr.add(gr.Button(t("ex_sanity", "en"), scale=2, elem_id="ex-sanity"), "ex_sanity", "value")
        verdict = gr.Markdown(elem_id="ex-verdict")
        curves_plot = gr.Plot(elem_id="ex-curves-plot", show_label=False)
        sanity_text = gr.Markdown(elem_id="ex-sanity-text")
        sanity_plot = gr.Plot(elem_id="ex-sanity-plot", show_label=False)
        with tr.add(gr.Accordion(t("compare_panel", "en"), open=False, elem_id="ex-compare-panel"), "compare_panel"):
            compare, compare_line = second_model_row(tr, entries, "ex")
            compare_maps_plot = gr.Plot(elem_id="ex-compare-maps-plot", show_label=False)

    controls = [ctx.image, model, geometry, allow, target, scale, steps, compare, ctx.lang]
    parts = dict(banner=banner, predictions=predictions, target_line=target_line, target=target, maps_plot=maps_plot,
                 steps_md=steps_md, curves_plot=curves_plot, verdict=verdict, sanity_plot=sanity_plot,
                 sanity_text=sanity_text, compare_line=compare_line, compare_maps_plot=compare_maps_plot)
    outputs = list(parts.values())
    analyse_step, redraw_step, measure_step, check_step, second_step = (
        by_component(parts, s) for s in (run, redraw, measure, check, redraw_second))

    def analyse(*values, progress=None):
        # a new image or model: the top class again
        c = Controls(*values)
        c.target = None
        return analyse_step(c, progress)

    def on_target(progress=gr.Progress(), *values):
        return analyse_step(Controls(*values), progress)

    def on_redraw(*values):
        return redraw_step(Controls(*values))

    def on_measure(progress=gr.Progress(), *values):
        return measure_step(Controls(*values), progress)

    def on_check(progress=gr.Progress(), *values):
        return check_step(Controls(*values), progress)

    def on_compare(*values, progress=None):
        return second_step(Controls(*values))

    for trigger in (model.change, geometry.input, allow.input):
        trigger(with_progress(analyse), controls, outputs, api_visibility="private")
    target.input(on_target, controls, outputs, api_visibility="private", trigger_mode="always_last")
    scale.input(on_redraw, controls, outputs, api_visibility="private", show_progress="hidden")
    measure_button.click(on_measure, controls, outputs, api_visibility="private")
    sanity_button.click(on_check, controls, outputs, api_visibility="private")
    # the second model runs once per image and class (cached), then follows the target and colours
    compare.change(with_progress(on_compare), controls, [compare_line, compare_maps_plot], api_visibility="private")
    ctx.lenses.append(TabHooks("explain", tab, analyse, on_redraw, controls, outputs, outputs))


def api(image: FileData, model: str, geometry: str = "model", target: str = "", steps: int = DEFAULT_STEPS,
        arrays: str = "") -> dict:
    """Explain a class's logit on an uploaded image, as `python -m explorer export explain` writes
    it: ``target``, ``methods``, per method ``map_<name>`` (h, w) over the patch tokens,
    ``deletion_<name>``/``insertion_<name>`` (steps + 1,) and their AUCs. ``target``: a class
    index or name (empty: the top class). Errors come in English and Chinese."""
    entry = model_for_lens("explain", model)
    geometry = check_geometry(geometry)
    steps = arguments.whole_number(steps, 1, MAX_STEPS, ("steps", "steps（步数）"))
    c = Controls(open_uploaded_image(image), entry.key, geometry, False, str(target or ""), "Viridis", steps, "", "en")
    loaded, analysis = c.analysis()
    measured = c.measured(loaded, analysis, "faithfulness")
    return arrays_reply(loaded, export_arrays(analysis, measured), arrays, target=analysis.target,
                        fastest_deletion=measured.fastest_deletion, fastest_insertion=measured.fastest_insertion)
