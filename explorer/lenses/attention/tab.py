"""The attention tab: pick a model, click a patch, move through layers and heads.

The model runs once per (model, weights, image, geometry); every slider, click, colour scale
and language change redraws from the cached ``AttentionAnalysis``.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.data_classes import FileData

from explorer.core import arguments
from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage
from explorer.core.preprocess import check_geometry
from explorer.core.weights import LoadedModel, vit_depth_and_heads
from explorer.lenses.registry import entries_for_lens, lens_analysis, model_for_lens
from explorer.lenses.attention import figures
from explorer.lenses.stepping import block_count, record_image
from explorer.lenses.attention.compute import HEAD_FUSIONS, AttentionAnalysis, analyze, linked_view
from explorer.lenses.plotting import SEQUENTIAL_SCALES, clicked_patch, patch_picker_image
from explorer.ui.i18n import t
from explorer.core.text import numbered
from explorer.ui import step_panel
from explorer.ui.uploads import open_uploaded_image
from explorer.ui.widgets import (HEAD_MEAN, TabHooks, by_component, demo_note, head_choices, picture_file, PageContext, banner_markdown, model_controls,
                                 second_model_row, user_errors, with_progress)

MEAN = HEAD_MEAN  # head dropdown value meaning "mean of heads"
PICKER_SIDE = 448

def analysis_for(image: LoadedImage, model_key: str, geometry: str,
                 allow_download: bool) -> tuple[LoadedModel, AttentionAnalysis]:
    """The cached analysis, computed (one model run) only on a cache miss."""
    return lens_analysis("attention", image, model_key, geometry, allow_download, analyze)


def _head(value) -> int | None:
    value = int(value) if value is not None else MEAN
    return None if value == MEAN else value


def _clamp(analysis: AttentionAnalysis, layer, head, query) -> tuple[int, int | None, int]:
    layer = min(max(int(layer or 0), 0), analysis.num_layers - 1)
    head = _head(head)
    if head is not None and head >= analysis.num_heads:
        head = None
    query = int(query or 0)
    if query >= analysis.attention.shape[-1]:
        query = 0
    return layer, head, query


def query_markdown(analysis: AttentionAnalysis, query: int, lang: str) -> str:
    return f"**{t('query', lang)}:** #{query} — {analysis.token_name(query)}"


def slider_figures(analysis: AttentionAnalysis, layer, head, query, fusion, scale, lang, fixed=False) -> dict:
    layer, head, query = _clamp(analysis, layer, head, query)
    fixed = bool(fixed)
    return {
        "query_plot": figures.query_attention_figure(analysis, layer, head, query, scale, lang, fixed),
        "rollout_plot": figures.rollout_figure(analysis, fusion, query, scale, lang, fixed),
        "matrix_plot": figures.attention_matrix_figure(analysis, layer, head, scale, lang, fixed),
    }


def query_outputs(analysis: AttentionAnalysis, query: int, lang: str) -> dict:
    picker = patch_picker_image(analysis.model_image, analysis.grid, analysis.patch_of_token(query), PICKER_SIDE)
    return {"view": {"query": query}, "picker": picture_file(picker), "query": query_markdown(analysis, query, lang)}


def static_outputs(loaded: LoadedModel, analysis: AttentionAnalysis, query: int, lang: str) -> dict:
    """Everything that depends on the analysis and the language, not on the sliders."""
    steps = numbered(analysis.steps, lang)
    if not analysis.predictions:
        steps = f"{t('no_classifier', lang)}\n\n{steps}"
    return {
        **query_outputs(analysis, query, lang),
        "banner": banner_markdown(loaded, lang),
        "predictions": figures.predictions_dict(analysis, lang) or None,
        "demo_note": demo_note(loaded, lang),
        "steps": steps,
        "distance_plot": figures.mean_distance_figure(analysis, lang),
        "pos_plot": figures.position_similarity_figure(analysis, lang),
        # headers travel with the rows: a value without them takes the component's English ones
        "shapes": {"headers": [t("shape_stage", lang), t("shape", lang), t("what", lang)],
                   "data": [list(row) for row in analysis.shape_table(lang)]},
    }


def build(ctx: PageContext, default_model: str | None = None) -> None:
    entries = entries_for_lens("attention")
    default_model = default_model or entries[0].key
    tr = ctx.translations
    with gr.Tab(t("tab_attention", "en"), id="attention") as tab:
        tr.add(tab, "tab_attention")
        view = gr.State({"query": 0})
        model, geometry, allow, banner = model_controls(tr, entries, default_model, "att")
        with gr.Row():
            with gr.Column(scale=2):
                picker = tr.add(gr.Image(label=t("picker", "en"), interactive=False, type="pil",
                                         elem_id="att-picker", buttons=[]), "picker")
                query_md = gr.Markdown(elem_id="att-query")
                reset = tr.add(gr.Button(t("reset_query", "en"), size="sm"), "reset_query", "value")
                predictions = tr.add(gr.Label(label=t("predictions", "en"), num_top_classes=5,
                                              elem_id="att-predictions"), "predictions")
                note = gr.Markdown(elem_id="att-demo-note")
                steps = gr.Markdown(elem_id="att-steps")
            with gr.Column(scale=3):
                with gr.Row():
                    # sized for the default model: a page-load event must not send a layer the
                    # model lacks (Gradio rejects a value above the slider's updated maximum)
                    depth, heads = vit_depth_and_heads(default_model)
                    layer = tr.add(gr.Slider(0, depth - 1, value=depth - 1, step=1, label=t("layer", "en"),
                                             elem_id="att-layer"), "layer")
                    head = tr.add(gr.Dropdown(head_choices(heads, "en"), value=MEAN, label=t("head", "en"),
                                              elem_id="att-head"), "head")
                query_plot = gr.Plot(elem_id="att-query-plot", show_label=False)  # on the first screen
                tr.add(gr.Markdown(t("att_caption", "en"), elem_classes="caption"), "att_caption", "value")
                stepper = step_panel.build(tr, "att")
                with gr.Row():
                    fusion = tr.add(gr.Radio([(t(f"fusion_{f}", "en"), f) for f in HEAD_FUSIONS],
                                             value="mean", label=t("fusion", "en"), elem_id="att-fusion"),
                                    update=lambda lang: dict(label=t("fusion", lang), choices=[
                                        (t(f"fusion_{f}", lang), f) for f in HEAD_FUSIONS]))
                    scale = tr.add(gr.Dropdown(list(SEQUENTIAL_SCALES), value="Viridis",
                                               label=t("colorscale", "en"), elem_id="att-scale"),
                                   "colorscale")
                    fixed = tr.add(gr.Checkbox(value=False, label=t("fixed_range", "en"), elem_id="att-fixed"),
                                   "fixed_range")
                rollout_plot = gr.Plot(elem_id="att-rollout-plot", show_label=False)
                tr.add(gr.Markdown(t("rollout_help", "en"), latex_delimiters=[
                    {"left": "$", "right": "$", "display": False}]), "rollout_help", "value")
        # full width under the first screen: each of the second model's maps as wide as the first's
        with tr.add(gr.Accordion(t("compare_panel", "en"), open=False, elem_id="att-compare-panel"), "compare_panel"):
            compare, compare_line = second_model_row(tr, entries, "att")
            with gr.Row():
                compare_query_plot = gr.Plot(elem_id="att-compare-query-plot", show_label=False)
                compare_rollout_plot = gr.Plot(elem_id="att-compare-rollout-plot", show_label=False)
        with gr.Row():
            matrix_plot = gr.Plot(elem_id="att-matrix-plot", show_label=False)
            with gr.Column():
                distance_plot = gr.Plot(elem_id="att-distance-plot", show_label=False)
                tr.add(gr.Markdown(t("distance_help", "en")), "distance_help", "value")
        with gr.Row():
            with gr.Column(scale=3):
                pos_plot = gr.Plot(elem_id="att-pos-plot", show_label=False)
                tr.add(gr.Markdown(t("pos_help", "en")), "pos_help", "value")
            with gr.Column(scale=2):
                shapes = tr.add(gr.Dataframe(headers=[t("shape_stage", "en"), t("shape", "en"), t("what", "en")],
                                             label=t("shape_table", "en"), interactive=False,
                                             elem_id="att-shapes", wrap=True,
                                             column_widths=["28%", "30%", "42%"]),
                                update=lambda lang: dict(label=t("shape_table", lang), headers=[
                                    t("shape_stage", lang), t("shape", lang), t("what", lang)]))

    parts = dict(view=view, layer=layer, head=head, banner=banner, picker=picker, query=query_md,
                 predictions=predictions, demo_note=note, steps=steps, distance_plot=distance_plot, pos_plot=pos_plot,
                 shapes=shapes, query_plot=query_plot, rollout_plot=rollout_plot, matrix_plot=matrix_plot,
                 step_text=stepper.text, step_plot=stepper.plot, compare_line=compare_line,
                 compare_query_plot=compare_query_plot, compare_rollout_plot=compare_rollout_plot)
    controls = [ctx.image, model, geometry, allow, layer, head, fusion, scale, fixed, view, compare, ctx.lang]
    compare_parts = [compare_line, compare_query_plot, compare_rollout_plot]
    slider_outputs = [query_plot, rollout_plot, matrix_plot, *compare_parts]
    analyse_outputs = list(parts.values())
    click_outputs = [view, picker, query_md, *slider_outputs]
    run, slide, pick, translate, second = (by_component(parts, step)
                                           for step in (run_analysis, redraw, set_query, relabel, redraw_second))

    def analyse(*values, progress=None):
        return run(Controls(*values), progress)

    def on_slider(*values):
        return slide(Controls(*values))

    # Gradio fills event data only in a parameter placed before *values.
    def on_click(evt: gr.SelectData, *values):
        return pick(Controls(*values), tuple(evt.index))

    def on_reset(*values):
        return pick(Controls(*values), None)

    def on_language(*values):
        return translate(Controls(*values))

    def on_compare(*values, progress=None):
        return second(Controls(*values))

    # `.input` fires on the user's own changes only, not when an analysis resets a control; a
    # dropdown fires it twice per click (on the pick and on blur), so the model picker, which no
    # handler ever sets, listens to `.change`: once per new value, by mouse or keyboard.
    for trigger in (model.change, geometry.input, allow.input):
        trigger(with_progress(analyse), controls, analyse_outputs, api_visibility="private")
    for control in (layer, head, fusion, scale, fixed):
        control.input(on_slider, controls, slider_outputs, api_visibility="private",
                      show_progress="hidden", trigger_mode="always_last")
    # a second model runs once per image (cached), then follows every control like the first
    compare.change(with_progress(on_compare), controls, compare_parts, api_visibility="private")
    clicked = picker.select(on_click, controls, click_outputs, api_visibility="private", show_progress="hidden")
    was_reset = reset.click(on_reset, controls, click_outputs, api_visibility="private")

    # the step-through, from one recorded forward per image (cached): never the model again
    step_panel.wire(stepper, controls, lambda *values: step_target(Controls(*values)),
                    follow=[layer.input, head.input], after=[clicked, was_reset], lang=ctx.lang)
    ctx.lenses.append(TabHooks("attention", tab, analyse, on_language, controls, analyse_outputs,
                               [c for name, c in parts.items() if name != "layer"]))


@dataclass
class Controls:
    """The values of the tab's inputs, in the order of ``controls`` in ``build``."""

    image: LoadedImage | None
    model_key: str
    geometry: str
    allow_download: bool
    layer: float | None
    head: int | None
    fusion: str
    scale: str
    fixed: bool  # colour range 0–1 instead of each map's own
    view: dict
    compare: str | None  # a second model side by side ("" or None: none)
    lang: str

    def analysis(self) -> tuple[LoadedModel, AttentionAnalysis]:
        if self.image is None:
            raise UserFacingError(t("need_image", "en"), t("need_image", "zh"))
        return analysis_for(self.image, self.model_key, self.geometry, self.allow_download)


@user_errors
def run_analysis(c: Controls, progress=None) -> dict:
    """New image or model: one model run (unless cached), then every output."""
    if progress is not None:
        progress(0, desc=t("analysing", c.lang))
    loaded, analysis = c.analysis()
    layer = analysis.num_layers - 1 if c.layer is None else min(int(c.layer), analysis.num_layers - 1)
    head = c.head if _head(c.head) is not None and _head(c.head) < analysis.num_heads else MEAN
    query = linked_query(c.view, analysis)
    outputs = {
        "layer": gr.update(maximum=analysis.num_layers - 1, value=layer),
        "head": gr.update(choices=head_choices(analysis.num_heads, c.lang), value=head),
        **static_outputs(loaded, analysis, query, c.lang),
        **slider_figures(analysis, layer, head, query, c.fusion, c.scale, c.lang, c.fixed),
        **second_model_outputs(c, analysis, layer, head, query),
    }
    # a new image or model empties an opened step-through (its next step or a click redraws it):
    # a layer or head change must never run the model for it
    outputs.update(step_text="", step_plot=None)
    if query:  # a linked query stays linked until a click picks another: the page's first
        outputs["view"] = {**outputs["view"], "linked": True}  # events may analyse more than once
    return outputs


def linked_query(view: dict | None, analysis: AttentionAnalysis) -> int:
    """A new image or model starts from CLS — unless a link (``ui/share.py``) brought the query
    token, and this analysis has it."""
    query = (view or {}).get("query") if (view or {}).get("linked") else None
    if isinstance(query, int) and 0 <= query < analysis.attention.shape[-1]:
        return query
    return 0


@user_errors
def redraw(c: Controls) -> dict:
    """A slider moved: redraw from the cached analysis (nothing to draw without an image)."""
    if c.image is None:
        return {}
    _, analysis = c.analysis()
    return {**slider_figures(analysis, c.layer, c.head, c.view["query"], c.fusion, c.scale, c.lang, c.fixed),
            **second_model_outputs(c, analysis, c.layer, c.head, c.view["query"])}


@user_errors
def redraw_second(c: Controls) -> dict:
    """The second model was picked (or put back to none): its maps alone."""
    if c.image is None:
        return {}
    _, analysis = c.analysis()
    return second_model_outputs(c, analysis, c.layer, c.head, c.view["query"])


def second_model_outputs(c: Controls, analysis: AttentionAnalysis, layer, head, query) -> dict:
    """The second model's query attention and rollout at the layer, head and query linked to the
    first's (``linked_view``), with a line saying which; empty without a second model. Its own
    problems (a model this lens cannot read) are said in its line, the first model's maps stay."""
    empty = {"compare_line": "", "compare_query_plot": None, "compare_rollout_plot": None}
    if not c.compare:
        return empty
    try:
        loaded, second = analysis_for(c.image, c.compare, c.geometry, c.allow_download)
    except UserFacingError as err:
        return {**empty, "compare_line": err.message(c.lang)}
    layer, head, query = _clamp(analysis, layer, head, query)
    layer2, head2, query2 = linked_view(analysis, second, layer, head, query)
    # (the figures name it by its key: a full label takes half a figure's width)
    line = t("att_compare_linked", c.lang, model=loaded.shown.label(c.lang), layer=layer2, layers=second.num_layers, first_layer=layer,
             first_layers=analysis.num_layers, head=figures.head_name(head2, second.num_heads, c.lang),
             query=f"#{query2} {second.token_name(query2)}")
    return {"compare_line": f"{line}\n\n{banner_markdown(loaded, c.lang)}",
            "compare_query_plot": figures.query_attention_figure(second, layer2, head2, query2, c.scale, c.lang,
                                                                 c.fixed, model_name=loaded.shown.key),
            "compare_rollout_plot": figures.rollout_figure(second, c.fusion, query2, c.scale, c.lang, c.fixed,
                                                           model_name=loaded.shown.key)}


@user_errors
def set_query(c: Controls, click: tuple[float, float] | None) -> dict:
    """A click on the picker (pixel x, y) makes that patch the query; None resets to CLS."""
    if c.image is None:
        return {}
    _, analysis = c.analysis()
    query = 0
    if click is not None:
        query = analysis.token_of_patch(*clicked_patch(analysis.model_image, analysis.grid, click, PICKER_SIDE))
    return {**query_outputs(analysis, query, c.lang),
            **slider_figures(analysis, c.layer, c.head, query, c.fusion, c.scale, c.lang, c.fixed),
            **second_model_outputs(c, analysis, c.layer, c.head, query)}


def step_target(c: Controls) -> step_panel.StepTarget | str | None:
    """The step-through's layer, head and query for the tab's controls, with the image's forward
    recorded once (cached beside the analysis)."""
    if c.image is None:
        return None
    loaded, analysis = c.analysis()
    if block_count(loaded.model) != analysis.num_layers:
        return t("step_unsupported", c.lang)
    recording = lens_analysis("attention", c.image, c.model_key, c.geometry, c.allow_download, record_image,
                              part="steps")[1]
    layer, head, query = _clamp(analysis, c.layer, c.head, c.view["query"])
    return step_panel.StepTarget(loaded.model, recording, layer, head, query, analysis.model_image)


@user_errors
def relabel(c: Controls) -> dict:
    """The language changed: redraw every text and figure from the cached analysis."""
    if c.image is None:
        return {}
    loaded, analysis = c.analysis()
    query = c.view["query"]
    return {"head": gr.update(choices=head_choices(analysis.num_heads, c.lang)),
            **static_outputs(loaded, analysis, query, c.lang),
            **slider_figures(analysis, c.layer, c.head, query, c.fusion, c.scale, c.lang, c.fixed),
            **second_model_outputs(c, analysis, c.layer, c.head, query)}


# Generous static bounds, checked before anything is loaded; the model's own ranges after.
MAX_LAYERS, MAX_HEADS, MAX_TOKENS = 1024, 1024, 1_000_000


def api(image: FileData, model: str, geometry: str = "model", layer: int = -1,
                  head: int = -1, query: int = 0, fusion: str = "mean") -> dict:
    """Analyse an uploaded image with a model: top-5 predictions, the patch grid, the attention
    of token ``query`` (0 = CLS) at ``layer`` (-1 = last) and ``head`` (-1 = mean of heads)
    over the patches, and the rollout map, as nested lists. Errors come in English and Chinese."""
    entry = model_for_lens("attention", model)
    geometry = check_geometry(geometry)
    fusion = arguments.choice(fusion, HEAD_FUSIONS, ("fusion", "fusion（多头融合方式）"))
    layer = arguments.whole_number(layer, 0, MAX_LAYERS, ("layer", "layer（层）"), (-1, "the last layer", "最后一层"))
    head = arguments.whole_number(head, 0, MAX_HEADS, ("head", "head（注意力头）"), (MEAN, "the mean of heads", "各头平均"))
    query = arguments.whole_number(query, 0, MAX_TOKENS, ("query", "query（查询 token）"))
    loaded_image = open_uploaded_image(image)
    loaded, analysis = analysis_for(loaded_image, entry.key, geometry, allow_download=False)
    # the shown model's own ranges (a stand-in may have another depth than the one asked for)
    what = loaded.shown.label_en
    layer = arguments.whole_number(layer, 0, analysis.num_layers - 1, (f"layer ({what})", f"layer（{what}）"),
                                   (-1, "the last layer", "最后一层"))
    head = arguments.whole_number(head, 0, analysis.num_heads - 1, (f"head ({what})", f"head（{what}）"),
                                  (MEAN, "the mean of heads", "各头平均"))
    tokens = analysis.attention.shape[-1]
    query = arguments.whole_number(query, 0, tokens - 1, (f"query ({what}, {tokens} tokens)",
                                                          f"query（{what}，共 {tokens} 个 token）"))
    layer = analysis.num_layers - 1 if layer < 0 else layer
    head_index = None if head == MEAN else head
    return {
        "model": loaded.shown.key,
        "weights": loaded.source,
        "image_digest": loaded_image.digest,
        "grid": list(analysis.grid),
        "num_layers": analysis.num_layers,
        "num_heads": analysis.num_heads,
        "predictions": [vars(p) for p in analysis.predictions],
        "attention": analysis.query_map(layer, head_index, query).round(6).tolist(),
        "rollout": analysis.rollout_map(fusion, query).round(6).tolist(),
        "shapes": analysis.shape_table(),
    }


attention_api = api  # the name earlier releases exported
