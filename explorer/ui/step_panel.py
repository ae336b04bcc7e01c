"""The step-through panel of the tabs with attention (Attention, Swin, CrossFormer, Twins): an
accordion with previous/next and a step slider, the step's formula with this image's numbers
and its figure (``lenses/stepping``). It draws from one recorded forward per image, cached
beside the lens's analysis, so a step, layer, head, query or language change runs no model;
while closed it costs nothing: the tab's controls redraw it only once it shows a step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import gradio as gr
import numpy as np
from torch import nn

from explorer.lenses.stepping import Recording, step_from
from explorer.lenses.stepping.figures import STEPS, step_figure, step_markdown
from explorer.ui.i18n import t
from explorer.ui.widgets import Translations, by_component, user_errors

__all__ = ["StepPanel", "StepTarget", "build", "draw", "wire"]


@dataclass
class StepTarget:
    """What the tab's controls point at: the model, its recorded forward and the pick."""

    model: nn.Module
    recording: Recording
    layer: int  # flat block index (``stepping.stage_layers`` maps a stage's block to it)
    head: int | None  # None: the mean of heads, which is stepped as head 0
    query: int
    image: np.ndarray  # the picture the model saw, (H, W, 3) uint8
    place: str | None = None  # "Stage 2, block 1" where the tab has stages; None: "Layer n"


@dataclass
class StepPanel:
    panel: gr.Accordion
    prev: gr.Button
    index: gr.Slider
    next: gr.Button
    text: gr.Markdown
    plot: gr.Plot

    @property
    def outputs(self) -> list:
        return [self.index, self.text, self.plot]


def build(tr: Translations, prefix: str) -> StepPanel:
    """The closed accordion, its elem_ids ``<prefix>-step``, ``-step-prev``, ``-step-index``, …"""
    with tr.add(gr.Accordion(t("step_panel", "en"), open=False, elem_id=f"{prefix}-step"), "step_panel") as panel:
        with gr.Row(equal_height=True):
            prev = tr.add(gr.Button(t("step_prev", "en"), size="sm", scale=0, min_width=110,
                                    elem_id=f"{prefix}-step-prev"), "step_prev", "value")
            index = tr.add(gr.Slider(1, len(STEPS), value=1, step=1, label=t("step_index", "en"),
                                     elem_id=f"{prefix}-step-index", scale=3), "step_index")
            nxt = tr.add(gr.Button(t("step_next", "en"), size="sm", scale=0, min_width=110,
                                   elem_id=f"{prefix}-step-next"), "step_next", "value")
        text = gr.Markdown(elem_id=f"{prefix}-step-text")
        plot = gr.Plot(elem_id=f"{prefix}-step-plot", show_label=False)
    return StepPanel(panel, prev, index, nxt, text, plot)


def draw(target: StepTarget | str, index: int, lang: str) -> dict:
    """The panel at step ``index`` (1-based, clamped), by output name; a string is a message
    (the model has no step-through)."""
    if isinstance(target, str):
        return {"step_text": target, "step_plot": None}
    index = min(max(int(index), 1), len(STEPS))
    step = step_from(target.model, target.recording, target.layer, 0 if target.head is None else target.head,
                     target.query)
    return {"step_index": index,
            "step_text": step_markdown(step, index - 1, lang, place=target.place, mean_head=target.head is None),
            "step_plot": step_figure(step, index - 1, target.image, lang)}


def wire(panel: StepPanel, controls: list, resolve: Callable[..., StepTarget | str | None],
         follow: list, after: list, lang: gr.components.Component) -> None:
    """Events: opening the panel, its slider and buttons draw the step; ``follow`` (the tab's
    own ``.input`` events: layer, head, …) and ``after`` (event listeners whose ``.then`` sees
    the new query) redraw it once it shows a step, as does a language change. ``resolve(*values
    of controls, lang)`` gives the target (None: nothing to draw yet)."""
    def step_outputs(values, index: int, lang: str) -> dict:
        target = resolve(*values)
        return {} if target is None else draw(target, index, lang)

    show = by_component(dict(step_index=panel.index, step_text=panel.text, step_plot=panel.plot),
                        user_errors(step_outputs))
    inputs = [*controls, lang, panel.index]

    def on_step(*values, move: int = 0):
        *rest, language, index = values
        return show(tuple(rest), int(index or 1) + move, language) or {panel.text: gr.skip()}  # {} is one value

    def on_follow(*values):
        return on_step(*values[:-1]) if values[-1] else {panel.text: gr.skip()}

    quiet = dict(api_visibility="private", show_progress="hidden")
    panel.panel.expand(on_step, inputs, panel.outputs, **quiet)
    panel.index.input(on_step, inputs, panel.outputs, trigger_mode="always_last", **quiet)
    panel.prev.click(lambda *v: on_step(*v, move=-1), inputs, panel.outputs, **quiet)
    panel.next.click(lambda *v: on_step(*v, move=1), inputs, panel.outputs, **quiet)
    opened = [*inputs, panel.text]
    for event in follow:
        event(on_follow, opened, panel.outputs, trigger_mode="always_last", **quiet)
    for listener in after:
        listener.then(on_follow, opened, panel.outputs, **quiet)
    lang.change(on_follow, opened, panel.outputs, **quiet)
