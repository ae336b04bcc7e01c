"""The Swin tab: windows and shifted windows on the image, the cyclic shift step by step,
the mask of the window under a clicked token, and its logits split into content, bias and
mask. The model runs once per image; every control redraws from the cached analysis."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.data_classes import FileData

from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage
from explorer.core.results import cached_analysis
from explorer.core.weights import LoadedModel
from explorer.lenses.registry import entries_for_lens
from explorer.lenses.plotting import clicked_patch, patch_picker_image
from explorer.lenses.swin import figures
from explorer.lenses.swin.compute import SwinImageAnalysis, analyze_image, cyclic_shift_steps
from explorer.ui.i18n import predictions_label, t
from explorer.core.text import numbered
from explorer.core.preprocess import check_geometry
from explorer.lenses.registry import model_for_lens
from explorer.ui.api import arrays_reply
from explorer.ui.uploads import open_uploaded_image
from explorer.ui.widgets import (PageContext, banner_markdown, model_controls, picker_column,
                                 stage_block_head, user_errors, wire_stage_lens)

MEAN = -1
PICKER_SIDE = 448


def analysis_for(image: LoadedImage, model_key: str, geometry: str,
                 allow_download: bool) -> tuple[LoadedModel, SwinImageAnalysis]:
    return cached_analysis("swin", image, model_key, geometry, allow_download, analyze_image)


@dataclass
class SwinView:
    """What the user has chosen: stage, block within the stage, head, query token."""

    stage: int = 0
    block: int = 1  # the first shifted block of stage 0
    head: int | None = None
    query: tuple[int, int] | None = None  # token (row, col) on the stage's map

    def clamp(self, result: SwinImageAnalysis) -> "SwinView":
        stages = result.swin.stages
        stage = min(max(self.stage, 0), len(stages) - 1)
        geo = stages[stage]
        block = min(max(self.block, 0), len(geo.blocks) - 1)
        heads = geo.blocks[block].heads
        head = self.head if self.head is not None and 0 <= self.head < heads else None
        rows, cols = geo.resolution
        query = self.query or (rows - 2, cols - 2)  # near the corner, where the mask matters
        query = (min(query[0], rows - 1), min(query[1], cols - 1))
        return SwinView(stage, block, head, query)


def _choices(result: SwinImageAnalysis, view: SwinView, lang: str):
    stages = result.swin.stages
    stage_choices = [(f"{t('stage', lang)} {s.stage} · {s.resolution[0]}×{s.resolution[1]}", s.stage)
                     for s in stages]
    blocks = stages[view.stage].blocks
    block_choices = [(f"{b.block} · {t('swin_shifted' if b.shifted else 'swin_regular', lang)}", b.block)
                     for b in blocks]
    heads = blocks[view.block].heads
    head_choices = [(t("head_mean", lang), MEAN)] + [(t("head_n", lang, n=h), h) for h in range(heads)]
    return stage_choices, block_choices, head_choices


def render(loaded: LoadedModel, result: SwinImageAnalysis, view: SwinView, lang: str) -> tuple:
    """Every output of the tab for this view (figures only; the model does not run)."""
    a, image = result.swin, result.model_image
    stage, block, head, query = view.stage, view.block, view.head, view.query
    geo = a.stages[stage]
    window, slot = a.window_of_token(stage, block, *query)
    regular = block - block % 2
    shifted = min(regular + 1, len(geo.blocks) - 1)
    shift_block = geo.blocks[shifted]
    steps = cyclic_shift_steps(image, shift_block.window, shift_block.shift, geo.token_px)
    stage_choices, block_choices, head_choices = _choices(result, view, lang)
    picker = patch_picker_image(image, geo.resolution, query, PICKER_SIDE)
    query_md = t("swin_query", lang, r=query[0], c=query[1], stage=stage, h=geo.resolution[0],
                 w=geo.resolution[1], window=window, slot=slot)
    if shift_block.wrap_leak:
        query_md += "\n\n" + t("swin_wrap_leak", lang, ph=shift_block.pad[0], pw=shift_block.pad[1])
    steps_md = numbered(result.steps, lang)
    return (
        {"stage": stage, "block": block, "head": head, "query": query},
        gr.update(choices=stage_choices, value=stage),
        gr.update(choices=block_choices, value=block),
        gr.update(choices=head_choices, value=MEAN if head is None else head),
        banner_markdown(loaded, lang),
        picker,
        query_md,
        predictions_label(result.predictions, lang) or None,
        steps_md,
        figures.windows_figure(a, image, stage, block, query, lang),
        figures.window_attention_figure(a, image, stage, regular, head, query, lang),
        figures.window_attention_figure(a, image, stage, shifted, head, query, lang),
        figures.shift_steps_figure(steps, image, geo.token_px, lang),
        figures.mask_figure(a, stage, shifted, a.window_of_token(stage, shifted, *query)[0], lang),
        figures.logit_split_figure(a, stage, block, window, head, lang),
    )


@dataclass
class Controls:
    image: LoadedImage | None
    model_key: str
    geometry: str
    allow_download: bool
    stage: int | None
    block: int | None
    head: int | None
    view: dict
    lang: str

    def analysis(self) -> tuple[LoadedModel, SwinImageAnalysis]:
        if self.image is None:
            raise UserFacingError(t("need_image", "en"), t("need_image", "zh"))
        return analysis_for(self.image, self.model_key, self.geometry, self.allow_download)

    def chosen(self, **changes) -> SwinView:
        head = None if self.head in (None, MEAN) else int(self.head)
        view = SwinView(int(self.stage or 0), int(self.block if self.block is not None else 1), head,
                        tuple(self.view["query"]) if self.view.get("query") else None)
        for name, value in changes.items():
            setattr(view, name, value)
        return view


@user_errors
def refresh(c: Controls, **changes) -> tuple:
    loaded, result = c.analysis()
    return render(loaded, result, c.chosen(**changes).clamp(result), c.lang)


@user_errors
def change_stage(c: Controls) -> tuple:
    """A new stage has its own map size: carry the query over in image coordinates."""
    loaded, result = c.analysis()
    old = c.view.get("stage", 0) or 0
    stages = result.swin.stages
    new = min(int(c.stage or 0), len(stages) - 1)
    query = None
    if c.view.get("query"):
        (r, col), (h0, w0), (h1, w1) = c.view["query"], stages[old].resolution, stages[new].resolution
        query = (int(r * h1 / h0), int(col * w1 / w0))
    view = c.chosen(stage=new, query=query)
    view.block = min(view.block, len(stages[new].blocks) - 1)
    return render(loaded, result, view.clamp(result), c.lang)


@user_errors
def click(c: Controls, xy: tuple[float, float]) -> tuple:
    loaded, result = c.analysis()
    view = c.chosen().clamp(result)
    grid = result.swin.stages[view.stage].resolution
    view.query = clicked_patch(result.model_image, grid, xy, PICKER_SIDE)
    return render(loaded, result, view, c.lang)


def build(ctx: PageContext) -> None:
    entries = entries_for_lens("swin")
    if not entries:
        return
    tr = ctx.translations
    with gr.Tab(t("tab_swin", "en"), id="swin") as tab:
        tr.add(tab, "tab_swin")
        view = gr.State({})
        model, geometry, allow, banner = model_controls(tr, entries, entries[0].key, "swin")
        with gr.Row():
            with gr.Column(scale=2):
                picker, query_md, predictions, steps = picker_column(tr, "swin", "swin_picker")
            with gr.Column(scale=3):
                stage, block, head = stage_block_head(tr, "swin")
                windows_plot = gr.Plot(elem_id="swin-windows-plot", show_label=False)
        with gr.Row():
            regular_plot = gr.Plot(elem_id="swin-regular-plot", show_label=False)
            shifted_plot = gr.Plot(elem_id="swin-shifted-plot", show_label=False)
            mask_plot = gr.Plot(elem_id="swin-mask-plot", show_label=False)
        shift_plot = gr.Plot(elem_id="swin-shift-plot", show_label=False)
        tr.add(gr.Markdown(t("swin_help", "en"), latex_delimiters=[
            {"left": "$", "right": "$", "display": False}]), "swin_help", "value")
        split_plot = gr.Plot(elem_id="swin-split-plot", show_label=False)

    outputs = [view, stage, block, head, banner, picker, query_md, predictions, steps, windows_plot,
               regular_plot, shifted_plot, shift_plot, mask_plot, split_plot]
    wire_stage_lens(ctx, "swin", tab, model=model, geometry=geometry, allow=allow, stage=stage,
                    block=block, head=head, view=view, picker=picker, outputs=outputs,
                    controls_type=Controls, refresh=refresh, change_stage=change_stage, click=click)


def api(image: FileData, model: str, geometry: str = "model", arrays: str = "") -> dict:
    """The Swin lens on an uploaded image, as `python -m explorer export swin` writes it: per block
    (``stage{s}_block{b}_*``) the window attention probabilities, the content (q·kᵀ·scale) and
    bias logits, window ids, the −100/0 mask and region ids of shifted blocks, and the geometry
    (H, W, window h/w, shift h/w, pad h/w). Small arrays come by default; name others in
    ``arrays`` (comma-separated). Errors come in English and Chinese."""
    from explorer.lenses.swin.compute import export_arrays

    entry = model_for_lens("swin", model)
    geometry = check_geometry(geometry)
    loaded, result = analysis_for(open_uploaded_image(image), entry.key, geometry, allow_download=False)
    return arrays_reply(loaded, export_arrays(result), arrays,
                        predictions=[vars(p) for p in result.predictions])
