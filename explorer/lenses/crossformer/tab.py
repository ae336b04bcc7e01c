"""The CrossFormer tab: which tokens share an attention group in the SDA and the LDA block of
a stage, a clicked token's attention over its group in both, the cross-scale embedding's
kernels around that token, and its group's logits split into content, DPB bias and padding
mask. The model runs once per image; every control redraws from the cached analysis."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.data_classes import FileData

from explorer.core.images import LoadedImage
from explorer.core.preprocess import check_geometry
from explorer.core.weights import LoadedModel
from explorer.lenses.crossformer import figures
from explorer.lenses.crossformer.compute import (CrossFormerAnalysis, CrossFormerImageAnalysis,
                                                 analyze_image)
from explorer.lenses.registry import lens_analysis, model_for_lens
from explorer.ui.api import arrays_reply
from explorer.ui.i18n import t
from explorer.ui.stage_tab import StageLens, StagePick, head_choices
from explorer.ui.uploads import open_uploaded_image

LATEX = [{"left": "$", "right": "$", "display": False}]


def analysis_for(image: LoadedImage, model_key: str, geometry: str,
                 allow_download: bool) -> tuple[LoadedModel, CrossFormerImageAnalysis]:
    return lens_analysis("crossformer", image, model_key, geometry, allow_download, analyze_image)


def _default_stage(a: CrossFormerAnalysis) -> int:
    """The first stage whose LDA block really spreads (map > G), else stage 0."""
    for s, depth in enumerate(a.depths):
        if depth > 1 and a.block(s, 1).kind == "LDA":
            return s
    return 0


@dataclass
class CrossFormerView(StagePick):
    """What the user has chosen: stage (None: the first stage with a real LDA block), block
    (None: the first LDA block of the stage), head (None: mean of heads), query token."""

    def clamp(self, result: CrossFormerImageAnalysis) -> "CrossFormerView":
        a = result.cross
        stage = _default_stage(a) if self.stage is None else self.stage
        stage = min(max(stage, 0), a.num_stages - 1)
        depth = a.depths[stage]
        block = min(1, depth - 1) if self.block is None else self.block
        block = min(max(block, 0), depth - 1)
        heads = a.block(stage, block).heads
        head = self.head if self.head is not None and 0 <= self.head < heads else None
        rows, cols = a.stage_grids[stage]
        query = self.query or (rows // 2, cols // 2)
        query = (min(max(query[0], 0), rows - 1), min(max(query[1], 0), cols - 1))
        return CrossFormerView(stage, block, head, query)

    def pair(self, result: CrossFormerImageAnalysis) -> tuple[int, int | None]:
        """The SDA block and the LDA block (None if the stage has none) shown side by side."""
        sda = self.block - self.block % 2
        return sda, (sda + 1 if sda + 1 < result.cross.depths[self.stage] else None)


def _block_label(a: CrossFormerAnalysis, stage: int, block: int, lang: str) -> str:
    item = a.block(stage, block)
    return f"{block} · {figures.kind_name(item.kind, item.fallback, lang)}"


def _choices(result: CrossFormerImageAnalysis, view: CrossFormerView, lang: str):
    a = result.cross
    stage_choices = [(f"{t('stage', lang)} {s} · {h}×{w} · G = {a.group_sizes[s]}", s)
                     for s, (h, w) in enumerate(a.stage_grids)]
    block_choices = [(_block_label(a, view.stage, b, lang), b) for b in range(a.depths[view.stage])]
    return stage_choices, block_choices, head_choices(a.block(view.stage, view.block).heads, lang)


def _block_text(a: CrossFormerAnalysis, stage: int, block: int, lang: str) -> str:
    item = a.block(stage, block)
    lay, px = item.layout, a.token_px[stage][0]
    if item.fallback:
        text = t("cf_info_fallback", lang, block=block, h=lay.height, w=lay.width,
                 G=item.trained_group, g=lay.group_size)
    elif lay.kind == "SDA":
        text = t("cf_info_sda", lang, block=block, n=lay.num_groups, g=lay.group_size,
                 gp=lay.group_size * px)
    else:
        ih, iw = lay.interval
        text = t("cf_info_lda", lang, block=block, n=lay.num_groups, g=lay.group_size, ih=ih,
                 iw=iw, iph=ih * px, ipw=iw * px)
    if lay.is_padded:
        text += t("cf_info_padded", lang, hp=lay.padded_height, wp=lay.padded_width)
    return text


def info_markdown(result: CrossFormerImageAnalysis, view: CrossFormerView, lang: str) -> str:
    """The stage, what its SDA and LDA blocks do at this input size, and the query's group."""
    a = result.cross
    stage, (h, w) = view.stage, a.stage_grids[view.stage]
    blocks = ", ".join(_block_label(a, stage, b, lang) for b in range(a.depths[stage]))
    lines = [t("cf_info_stage", lang, stage=stage, h=h, w=w, px=a.token_px[stage][0],
               g=a.group_sizes[stage], heads=a.heads[stage], blocks=blocks)]
    sda, lda = view.pair(result)
    for block in (sda, lda):
        if block is not None:
            item = a.block(stage, block)
            group, slot = a.group_of_token(stage, block, *view.query)
            lines.append(_block_text(a, stage, block, lang) + " " + t(
                "cf_info_query", lang, r=view.query[0], c=view.query[1], group=group, slot=slot,
                block=block, kind=item.kind))
    return "\n\n".join(lines)


def embedding_markdown(a: CrossFormerAnalysis, lang: str) -> str:
    """A table of every cross-scale convolution: kernel, stride, padding, channels, footprint."""
    rows = [t("cf_embed_title", lang), "", t("cf_embed_columns", lang), "|---" * 8 + "|"]
    for layer in a.scale_layers:
        if layer.stage == 0:
            name = t("cf_layer_embed", lang)
        else:
            name = t("cf_layer_merge", lang, a=layer.stage - 1, b=layer.stage)
        for i, conv in enumerate(layer.convs):
            unit = "" if layer.input_px == 1 else f"{conv.kernel} × {layer.input_px} = "
            label = f"{name}<br>`{layer.name}`" if i == 0 else ""
            rows.append(f"| {label} | {conv.kernel} | {conv.stride} | "
                        f"{conv.padding} | {conv.in_channels} | {conv.out_channels} | "
                        f"{conv.channel_range} | {unit}{layer.footprint_px(conv)} px |")
    return "\n".join(rows)


def _lda_missing(stage: int, sda: int, lang: str):
    return figures.message_figure(t("cf_no_lda", lang, stage=stage, block=sda))


def draw(loaded: LoadedModel, result: CrossFormerImageAnalysis, view: CrossFormerView, lang: str) -> dict:
    """The CrossFormer outputs for this (clamped) view: figures only, the model does not run."""
    a, image = result.cross, result.model_image
    stage, block, head, query = view.stage, view.block, view.head, view.query
    grid = a.stage_grids[stage]
    sda, lda = view.pair(result)
    group, slot = a.group_of_token(stage, block, *query)
    if lda is None:
        lda_groups = lda_attention = _lda_missing(stage, sda, lang)
    else:
        lda_groups = figures.groups_figure(result, stage, lda, query, lang)
        lda_attention = figures.group_attention_figure(a, image, stage, lda, head, query, lang)
    return {
        "query": t("cf_query", lang, r=query[0], c=query[1], stage=stage, h=grid[0], w=grid[1],
                   px=a.token_px[stage][0]),
        "info": info_markdown(result, view, lang),
        "sda_groups": figures.groups_figure(result, stage, sda, query, lang),
        "lda_groups": lda_groups,
        "sda_attention": figures.group_attention_figure(a, image, stage, sda, head, query, lang),
        "lda_attention": lda_attention,
        "scale": figures.cross_scale_figure(a, image, stage, query, lang),
        "embedding": embedding_markdown(a, lang),
        "split": figures.logit_split_figure(a, stage, block, group, head, slot, lang),
    }


def _beside(tr) -> dict:
    info = gr.Markdown(elem_id="cf-info")
    tr.add(gr.Markdown(t("cf_help", "en"), latex_delimiters=LATEX), "cf_help", "value")  # text only: no output
    return {"info": info}


def _below(tr) -> dict:
    parts = {}
    for row in (("sda_groups", "lda_groups"), ("sda_attention", "lda_attention")):
        with gr.Row():
            for name in row:
                parts[name] = gr.Plot(elem_id=f"cf-{name.replace('_', '-')}-plot", show_label=False)
    tr.add(gr.Markdown(t("cf_caption", "en"), elem_classes="caption"), "cf_caption", "value")
    # The conv table needs the full width: its columns wrap letter by letter beside a figure.
    parts["scale"] = gr.Plot(elem_id="cf-scale-plot", show_label=False)
    parts["embedding"] = gr.Markdown(elem_id="cf-embedding")
    parts["split"] = gr.Plot(elem_id="cf-split-plot", show_label=False)
    return parts


TAB = StageLens(key="crossformer", prefix="cf", picker_label="cf_picker", analyse=analysis_for,
                view=CrossFormerView, grids=lambda result: result.cross.stage_grids,
                image_of=lambda result: result.model_image, choices=_choices, draw=draw,
                beside=_beside, below=_below,
                step_multiple=lambda loaded: (int(loaded.model.patch_embed.patch_size[0]),) * 2)
build, render = TAB.build, TAB.render


def api(image: FileData, model: str, geometry: str = "model", arrays: str = "") -> dict:
    """The CrossFormer lens on an uploaded image, as `python -m explorer export crossformer`
    writes it: per block the SDA/LDA group maps, attention probabilities, content and bias
    logits. Small arrays come by default; name others in ``arrays`` (comma-separated)."""
    from explorer.lenses.crossformer.compute import export_arrays

    entry = model_for_lens("crossformer", model)
    geometry = check_geometry(geometry)
    loaded, result = analysis_for(open_uploaded_image(image), entry.key, geometry, allow_download=False)
    return arrays_reply(loaded, export_arrays(result), arrays)
