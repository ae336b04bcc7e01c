"""One tab for the lenses whose models work in stages (Swin, CrossFormer, Twins).

The page part they share: model and geometry pickers, the banner, stage/block/head dropdowns, a
clickable token map with the query line, the top-5 and the preprocessing steps beside it. A lens
fills in what is its own with a ``StageLens``: how to analyse (cached), its view (``StagePick``
with a ``clamp`` that fills the lens's defaults), the dropdown choices, the components it adds
beside the dropdowns and below, and ``draw``, which returns those components' values by name.
A new model or geometry analyses (with a progress bar); block, head and clicks redraw from the
cached analysis; a stage change carries the query over in image coordinates. Under the picker
row, the step-through of the chosen block, head and query (``ui/step_panel.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage
from explorer.core.text import numbered
from explorer.core.weights import LoadedModel
from explorer.lenses.plotting import clicked_patch, patch_picker_image
from explorer.lenses.registry import entries_for_lens, lens_analysis
from explorer.lenses.stepping import record_image, stage_layers
from explorer.ui import step_panel
from explorer.ui.i18n import predictions_label, t
from explorer.ui.widgets import (HEAD_MEAN, PageContext, TabHooks, Translations, banner_markdown, by_component,
                                 demo_note, picture_file,
                                 head_choices, model_controls, picker_column, user_errors, with_progress)

__all__ = ["PICKER_SIDE", "StagePick", "StageControls", "StageLens", "head_choices"]

PICKER_SIDE = 448  # px of the clickable token map
Choices = list[tuple[str, int]]


@dataclass
class StagePick:
    """What the user has chosen; ``None`` leaves the choice to the lens's ``clamp``."""

    stage: int | None = None
    block: int | None = None
    head: int | None = None  # None: mean of heads
    query: tuple[int, int] | None = None  # token (row, col) on the stage's map


@dataclass
class StageControls:
    """The values of the tab's inputs, in the order of its events' ``inputs``."""

    image: LoadedImage | None
    model_key: str
    geometry: str
    allow_download: bool
    stage: int | None
    block: int | None
    head: int | None
    view: dict  # the last rendered pick (gr.State)
    lang: str

    def require_image(self) -> LoadedImage:
        if self.image is None:
            raise UserFacingError(t("need_image", "en"), t("need_image", "zh"))
        return self.image

    def picked(self, **changes) -> dict:
        """The pickers' values as ``StagePick`` fields (query from the last render), with
        ``changes`` applied."""
        query = self.view.get("query") if self.view else None
        fields = dict(stage=None if self.stage is None else int(self.stage),
                      block=None if self.block is None else int(self.block),
                      head=None if self.head in (None, HEAD_MEAN) else int(self.head),
                      query=tuple(query) if query else None)
        return {**fields, **changes}

    def query_on_stage(self, grids: list[tuple[int, int]], new: int) -> tuple[int, int] | None:
        """The last query carried to stage ``new``'s map in image coordinates (maps differ in size)."""
        if not (self.view and self.view.get("query")):
            return None
        old = min(int(self.view.get("stage") or 0), len(grids) - 1)
        (r, c), (h0, w0), (h1, w1) = self.view["query"], grids[old], grids[new]
        return int(r * h1 / h0), int(c * w1 / w0)


@dataclass(frozen=True)
class StageLens:
    key: str  # the lens (tab id, API endpoint)
    prefix: str  # of the components' elem_ids
    picker_label: str  # text key of the token map's label
    analyse: Callable[[LoadedImage, str, str, bool], tuple[LoadedModel, Any]]  # cached analysis
    view: type  # a StagePick whose ``clamp(result)`` fills the lens's defaults
    grids: Callable[[Any], list[tuple[int, int]]]  # each stage's token map (rows, cols)
    image_of: Callable[[Any], Any]  # the picture the model saw, (H, W, 3) uint8
    choices: Callable[[Any, Any, str], tuple[Choices, Choices, Choices]]  # stage, block, head
    draw: Callable[[LoadedModel, Any, Any, str], dict]  # "query" text + the lens's own outputs by name
    beside: Callable[[Translations], dict]  # components under the dropdowns, by name
    below: Callable[[Translations], dict]  # full-width components under the picker row, by name
    block_on_new_stage: int | None = None  # the block a stage change picks (None: keep, clamped)
    # what the lens's preprocessing cuts the image to a multiple of (None: the patch size)
    step_multiple: Callable[[LoadedModel], tuple[int, int]] | None = None

    # ------------------------------------------------------------------ computing the outputs

    def render(self, loaded: LoadedModel, result, view, lang: str) -> dict:
        """Every output of the tab by name, for this (clamped) view: the model does not run."""
        stages, blocks, heads = self.choices(result, view, lang)
        grid = self.grids(result)[view.stage]
        return {
            "view": {"stage": view.stage, "block": view.block, "head": view.head, "query": view.query},
            "stage": gr.update(choices=stages, value=view.stage),
            "block": gr.update(choices=blocks, value=view.block),
            "head": gr.update(choices=heads, value=HEAD_MEAN if view.head is None else view.head),
            "banner": banner_markdown(loaded, lang),
            "picker": picture_file(patch_picker_image(self.image_of(result), grid, view.query, PICKER_SIDE)),
            "predictions": predictions_label(result.predictions, lang) or None,
            "demo_note": demo_note(loaded, lang),
            "steps": numbered(result.steps, lang),
            **self.draw(loaded, result, view, lang),
        }

    def _analysis(self, c: StageControls):
        return self.analyse(c.require_image(), c.model_key, c.geometry or "model", c.allow_download)

    def refresh(self, c: StageControls) -> dict:
        loaded, result = self._analysis(c)
        return self.render(loaded, result, self.view(**c.picked()).clamp(result), c.lang)

    def change_stage(self, c: StageControls) -> dict:
        loaded, result = self._analysis(c)
        grids = self.grids(result)
        new = min(int(c.stage or 0), len(grids) - 1)
        changes = dict(stage=new, query=c.query_on_stage(grids, new))
        if self.block_on_new_stage is not None:
            changes["block"] = self.block_on_new_stage
        return self.render(loaded, result, self.view(**c.picked(**changes)).clamp(result), c.lang)

    def click(self, c: StageControls, xy: tuple[float, float]) -> dict:
        loaded, result = self._analysis(c)
        view = self.view(**c.picked()).clamp(result)
        view.query = clicked_patch(self.image_of(result), self.grids(result)[view.stage], xy, PICKER_SIDE)
        return self.render(loaded, result, view, c.lang)

    def step_target(self, c: StageControls) -> step_panel.StepTarget | str | None:
        """The step-through's block (flat index), head and query for the tab's controls, with
        the forward recorded once per image (cached beside the analysis)."""
        if c.image is None:
            return None
        loaded, result = self._analysis(c)
        view = self.view(**c.picked()).clamp(result)
        layers = stage_layers(loaded.model)
        if len(layers) != len(self.grids(result)) or view.block >= len(layers[view.stage]):
            return t("step_unsupported", c.lang)
        multiple = self.step_multiple(loaded) if self.step_multiple else None

        def record(loaded, image, geometry):
            return record_image(loaded, image, geometry, multiple)

        recording = lens_analysis(self.key, c.image, c.model_key, c.geometry or "model", c.allow_download, record,
                                  part="steps")[1]
        (row, col), cols = view.query, self.grids(result)[view.stage][1]
        return step_panel.StepTarget(loaded.model, recording, layers[view.stage][view.block], view.head,
                                     row * cols + col, self.image_of(result),
                                     place=t("step_stage_block", c.lang, stage=view.stage, block=view.block))

    # ------------------------------------------------------------------ the page

    def build(self, ctx: PageContext) -> None:
        entries = entries_for_lens(self.key)
        if not entries:
            return
        tr, p = ctx.translations, self.prefix
        with gr.Tab(t(f"tab_{self.key}", "en"), id=self.key) as tab:
            tr.add(tab, f"tab_{self.key}")
            parts = {"view": gr.State({})}
            model, geometry, allow, parts["banner"] = model_controls(tr, entries, entries[0].key, p)
            with gr.Row():
                with gr.Column(scale=2):
                    (parts["picker"], parts["query"], parts["predictions"], parts["demo_note"],
                     parts["steps"]) = picker_column(tr, p, self.picker_label)
                with gr.Column(scale=3):
                    with gr.Row():
                        for name in ("stage", "block", "head"):
                            parts[name] = tr.add(gr.Dropdown([], label=t(name, "en"), elem_id=f"{p}-{name}"), name)
                    parts.update(self.beside(tr))
            steps = step_panel.build(tr, p)
            parts.update(self.below(tr))
        self._wire(ctx, tab, parts, model, geometry, allow, steps)

    def _wire(self, ctx: PageContext, tab: gr.Tab, parts: dict, model, geometry, allow,
              steps: step_panel.StepPanel) -> None:
        inputs = [ctx.image, model, geometry, allow, parts["stage"], parts["block"], parts["head"],
                  parts["view"], ctx.lang]
        outputs = list(parts.values())
        analyse_outputs = [*outputs, steps.text, steps.plot]

        refresh, change_stage, click = (by_component(parts, user_errors(step))
                                        for step in (self.refresh, self.change_stage, self.click))

        def analyse(*values, progress=None):
            # a new image or model empties an opened step-through: its next step or control redraws it
            return {**refresh(StageControls(*values)), steps.text: "", steps.plot: None}

        def on_change(*values):
            return refresh(StageControls(*values))

        def on_stage(*values):
            return change_stage(StageControls(*values))

        def on_click(evt: gr.SelectData, *values):
            return click(StageControls(*values), tuple(evt.index))

        for trigger in (model.change, geometry.input, allow.input):
            trigger(with_progress(analyse), inputs, analyse_outputs, api_visibility="private")
        quiet = dict(api_visibility="private", show_progress="hidden")
        moved = [parts["stage"].input(on_stage, inputs, outputs, **quiet)]
        for control in (parts["block"], parts["head"]):
            moved.append(control.input(on_change, inputs, outputs, **quiet))
        moved.append(parts["picker"].select(on_click, inputs, outputs, **quiet))
        # the step-through follows once each of those has put its pick in the view
        step_panel.wire(steps, inputs, lambda *values: self.step_target(StageControls(*values)), follow=[],
                        after=moved, lang=ctx.lang)
        ctx.lenses.append(TabHooks(self.key, tab, analyse, on_change, inputs, analyse_outputs, outputs))
