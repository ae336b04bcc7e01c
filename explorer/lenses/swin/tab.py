"""The Swin tab: windows and shifted windows on the image, the cyclic shift step by step,
the mask of the window under a clicked token, and its logits split into content, bias and
mask. The model runs once per image; every control redraws from the cached analysis."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.data_classes import FileData

from explorer.core.images import LoadedImage
from explorer.core.preprocess import check_geometry
from explorer.core.weights import LoadedModel
from explorer.lenses.registry import lens_analysis, model_for_lens
from explorer.lenses.swin import figures
from explorer.lenses.swin.compute import SwinImageAnalysis, analyze_image, cyclic_shift_steps
from explorer.ui.api import arrays_reply
from explorer.ui.i18n import t
from explorer.ui.stage_tab import StageLens, StagePick, head_choices
from explorer.ui.uploads import open_uploaded_image

LATEX = [{"left": "$", "right": "$", "display": False}]


def analysis_for(image: LoadedImage, model_key: str, geometry: str,
                 allow_download: bool) -> tuple[LoadedModel, SwinImageAnalysis]:
    return lens_analysis("swin", image, model_key, geometry, allow_download, analyze_image)


@dataclass
class SwinView(StagePick):
    """Stage (None: 0), block within the stage (None: 1, the first shifted block), head (None:
    mean of heads), query token (None: near the corner, where the mask matters)."""

    def clamp(self, result: SwinImageAnalysis) -> "SwinView":
        stages = result.swin.stages
        stage = min(max(self.stage or 0, 0), len(stages) - 1)
        geo = stages[stage]
        block = min(max(1 if self.block is None else self.block, 0), len(geo.blocks) - 1)
        heads = geo.blocks[block].heads
        head = self.head if self.head is not None and 0 <= self.head < heads else None
        rows, cols = geo.resolution
        query = self.query or (rows - 2, cols - 2)
        query = (min(max(query[0], 0), rows - 1), min(max(query[1], 0), cols - 1))
        return SwinView(stage, block, head, query)


def _choices(result: SwinImageAnalysis, view: SwinView, lang: str):
    stages = result.swin.stages
    stage_choices = [(f"{t('stage', lang)} {s.stage} · {s.resolution[0]}×{s.resolution[1]}", s.stage)
                     for s in stages]
    blocks = stages[view.stage].blocks
    block_choices = [(f"{b.block} · {t('swin_shifted' if b.shifted else 'swin_regular', lang)}", b.block)
                     for b in blocks]
    return stage_choices, block_choices, head_choices(blocks[view.block].heads, lang)


def draw(loaded: LoadedModel, result: SwinImageAnalysis, view: SwinView, lang: str) -> dict:
    """The Swin outputs for this view (figures only; the model does not run)."""
    a, image = result.swin, result.model_image
    stage, block, head, query = view.stage, view.block, view.head, view.query
    geo = a.stages[stage]
    window, slot = a.window_of_token(stage, block, *query)
    regular = block - block % 2
    shifted = min(regular + 1, len(geo.blocks) - 1)
    shift_block = geo.blocks[shifted]
    steps = cyclic_shift_steps(image, shift_block.window, shift_block.shift, geo.token_px)
    query_md = t("swin_query", lang, r=query[0], c=query[1], stage=stage, h=geo.resolution[0],
                 w=geo.resolution[1], window=window, slot=slot)
    if shift_block.wrap_leak:
        query_md += "\n\n" + t("swin_wrap_leak", lang, ph=shift_block.pad[0], pw=shift_block.pad[1])
    return {
        "query": query_md,
        "windows": figures.windows_figure(a, image, stage, block, query, lang),
        "regular": figures.window_attention_figure(a, image, stage, regular, head, query, lang),
        "shifted": figures.window_attention_figure(a, image, stage, shifted, head, query, lang),
        "shift": figures.shift_steps_figure(steps, image, geo.token_px, lang),
        "mask": figures.mask_figure(a, stage, shifted, a.window_of_token(stage, shifted, *query)[0], lang),
        "split": figures.logit_split_figure(a, stage, block, window, head, lang),
    }


def _beside(tr) -> dict:
    windows = gr.Plot(elem_id="swin-windows-plot", show_label=False)
    tr.add(gr.Markdown(t("swin_caption", "en"), elem_classes="caption"), "swin_caption", "value")
    return {"windows": windows}


def _below(tr) -> dict:
    parts = {}
    with gr.Row():  # two panels a row: three were ~125 px wide at 1280 px
        for name in ("regular", "shifted"):
            parts[name] = gr.Plot(elem_id=f"swin-{name}-plot", show_label=False)
    parts["shift"] = gr.Plot(elem_id="swin-shift-plot", show_label=False)
    with gr.Row():
        with gr.Column(scale=1):
            parts["mask"] = gr.Plot(elem_id="swin-mask-plot", show_label=False)
        with gr.Column(scale=1):
            tr.add(gr.Markdown(t("swin_help", "en"), latex_delimiters=LATEX), "swin_help", "value")  # text only
    parts["split"] = gr.Plot(elem_id="swin-split-plot", show_label=False)
    return parts


TAB = StageLens(key="swin", prefix="swin", picker_label="swin_picker", analyse=analysis_for, view=SwinView,
                grids=lambda result: [s.resolution for s in result.swin.stages],
                image_of=lambda result: result.model_image, choices=_choices, draw=draw,
                beside=_beside, below=_below)
build, render = TAB.build, TAB.render


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
