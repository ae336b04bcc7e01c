"""The CrossFormer tab: which tokens share an attention group in the SDA and the LDA block of
a stage, a clicked token's attention over its group in both, the cross-scale embedding's
kernels around that token, and its group's logits split into content, DPB bias and padding
mask. The model runs once per image; every control redraws from the cached analysis."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.data_classes import FileData

from explorer.core.images import LoadedImage
from explorer.core.results import cached_analysis
from explorer.core.weights import LoadedModel
from explorer.lenses.registry import entries_for_lens
from explorer.lenses.crossformer import figures
from explorer.lenses.crossformer.compute import (CrossFormerAnalysis, CrossFormerImageAnalysis,
                                                 analyze_image)
from explorer.lenses.plotting import clicked_patch, patch_picker_image
from explorer.ui.i18n import predictions_label, t
from explorer.core.text import numbered
from explorer.core.preprocess import check_geometry
from explorer.lenses.registry import model_for_lens
from explorer.ui.api import arrays_reply
from explorer.ui.uploads import open_uploaded_image
from explorer.ui.widgets import (HEAD_MEAN, PageContext, StageControls, StagePick, banner_markdown,
                                 model_controls, picker_column, stage_block_head, user_errors,
                                 wire_stage_lens)

MEAN = HEAD_MEAN
PICKER_SIDE = 448
LATEX = [{"left": "$", "right": "$", "display": False}]


def analysis_for(image: LoadedImage, model_key: str, geometry: str,
                 allow_download: bool) -> tuple[LoadedModel, CrossFormerImageAnalysis]:
    return cached_analysis("crossformer", image, model_key, geometry, allow_download, analyze_image)


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
    heads = a.block(view.stage, view.block).heads
    head_choices = [(t("head_mean", lang), MEAN)] + [(t("head_n", lang, n=h), h) for h in range(heads)]
    return stage_choices, block_choices, head_choices


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


def render(loaded: LoadedModel, result: CrossFormerImageAnalysis, view: CrossFormerView,
           lang: str) -> tuple:
    """Every output of the tab for this (clamped) view: figures only, the model does not run."""
    a, image = result.cross, result.model_image
    stage, block, head, query = view.stage, view.block, view.head, view.query
    grid = a.stage_grids[stage]
    sda, lda = view.pair(result)
    group, slot = a.group_of_token(stage, block, *query)
    stage_choices, block_choices, head_choices = _choices(result, view, lang)
    picker = patch_picker_image(image, grid, query, PICKER_SIDE)
    query_md = t("cf_query", lang, r=query[0], c=query[1], stage=stage, h=grid[0], w=grid[1],
                 px=a.token_px[stage][0])
    steps_md = numbered(result.steps, lang)
    if lda is None:
        lda_groups = lda_attention = _lda_missing(stage, sda, lang)
    else:
        lda_groups = figures.groups_figure(result, stage, lda, query, lang)
        lda_attention = figures.group_attention_figure(a, image, stage, lda, head, query, lang)
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
        info_markdown(result, view, lang),
        figures.groups_figure(result, stage, sda, query, lang),
        lda_groups,
        figures.group_attention_figure(a, image, stage, sda, head, query, lang),
        lda_attention,
        figures.cross_scale_figure(a, image, stage, query, lang),
        embedding_markdown(a, lang),
        figures.logit_split_figure(a, stage, block, group, head, slot, lang),
    )


class Controls(StageControls):
    def analysis(self) -> tuple[LoadedModel, CrossFormerImageAnalysis]:
        return analysis_for(self.require_image(), self.model_key, self.geometry or "model", self.allow_download)

    def chosen(self, **changes) -> CrossFormerView:
        return CrossFormerView(**self.picked(**changes))


@user_errors
def refresh(c: Controls, **changes) -> tuple:
    loaded, result = c.analysis()
    return render(loaded, result, c.chosen(**changes).clamp(result), c.lang)


@user_errors
def change_stage(c: Controls) -> tuple:
    """A new stage has its own map size: carry the query over in image coordinates."""
    loaded, result = c.analysis()
    grids = result.cross.stage_grids
    new = min(int(c.stage or 0), len(grids) - 1)
    view = c.chosen(stage=new, query=c.query_on_stage(grids, new))
    return render(loaded, result, view.clamp(result), c.lang)


@user_errors
def click(c: Controls, xy: tuple[float, float]) -> tuple:
    loaded, result = c.analysis()
    view = c.chosen().clamp(result)
    grid = result.cross.stage_grids[view.stage]
    view.query = clicked_patch(result.model_image, grid, xy, PICKER_SIDE)
    return render(loaded, result, view, c.lang)


def build(ctx: PageContext) -> None:
    entries = entries_for_lens("crossformer")
    if not entries:
        return
    tr = ctx.translations
    with gr.Tab(t("tab_crossformer", "en"), id="crossformer") as tab:
        tr.add(tab, "tab_crossformer")
        view = gr.State({})
        model, geometry, allow, banner = model_controls(tr, entries, entries[0].key, "cf")
        with gr.Row():
            with gr.Column(scale=2):
                picker, query_md, predictions, steps = picker_column(tr, "cf", "cf_picker")
            with gr.Column(scale=3):
                stage, block, head = stage_block_head(tr, "cf")
                info = gr.Markdown(elem_id="cf-info")
                tr.add(gr.Markdown(t("cf_help", "en"), latex_delimiters=LATEX), "cf_help", "value")
        with gr.Row():
            sda_groups_plot = gr.Plot(elem_id="cf-sda-groups-plot", show_label=False)
            lda_groups_plot = gr.Plot(elem_id="cf-lda-groups-plot", show_label=False)
        with gr.Row():
            sda_attention_plot = gr.Plot(elem_id="cf-sda-attention-plot", show_label=False)
            lda_attention_plot = gr.Plot(elem_id="cf-lda-attention-plot", show_label=False)
        # The conv table needs the full width: its columns wrap letter by letter beside a figure.
        scale_plot = gr.Plot(elem_id="cf-scale-plot", show_label=False)
        embedding = gr.Markdown(elem_id="cf-embedding")
        split_plot = gr.Plot(elem_id="cf-split-plot", show_label=False)

    outputs = [view, stage, block, head, banner, picker, query_md, predictions, steps, info,
               sda_groups_plot, lda_groups_plot, sda_attention_plot, lda_attention_plot,
               scale_plot, embedding, split_plot]
    wire_stage_lens(ctx, "crossformer", tab, model=model, geometry=geometry, allow=allow, stage=stage,
                    block=block, head=head, view=view, picker=picker, outputs=outputs,
                    controls_type=Controls, refresh=refresh, change_stage=change_stage, click=click)


def api(image: FileData, model: str, geometry: str = "model", arrays: str = "") -> dict:
    """The CrossFormer lens on an uploaded image, as `python -m explorer export crossformer`
    writes it: per block the SDA/LDA group maps, attention probabilities, content and bias
    logits. Small arrays come by default; name others in ``arrays`` (comma-separated)."""
    from explorer.lenses.crossformer.compute import export_arrays

    entry = model_for_lens("crossformer", model)
    geometry = check_geometry(geometry)
    loaded, result = analysis_for(open_uploaded_image(image), entry.key, geometry, allow_download=False)
    return arrays_reply(loaded, export_arrays(result), arrays)
