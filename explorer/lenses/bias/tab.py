"""The position-bias tab: Swin's RPB tables and CrossFormer's DPB (at the trained and at any
other group size G′, next to the RPB table ``dpb_to_rpb`` makes from it), the gathered bias
and the index that gathers it, and CrossFormer's SDA/LDA groups on the image.

The tables are parameters: they are read once per (model, weights) and cached without any
image; only the groups figure uses the image (preprocessing only, no forward pass). Every
control redraws from the cache."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.core.images import LoadedImage
from explorer.core.results import RESULTS
from explorer.core.weights import LoadedModel
from explorer.lenses.registry import entries_for_lens
from explorer.lenses.bias import figures
from explorer.lenses.bias.compute import BiasAnalysis, BiasImage, BlockBias, analyze, analyze_image
from explorer.ui.i18n import t
from explorer.lenses.registry import lens_analysis, lens_model, model_for_lens
from explorer.ui.api import arrays_reply
from explorer.ui.widgets import (TabHooks, PageContext, by_component, banner_markdown, model_controls, user_errors,
                                 with_progress)

ALL = -1  # head dropdown value meaning "all heads as small multiples"
DEFAULT_G = 7
EXACT = 1e-6  # the page calls DPB and RPB identical up to this max |difference|
LATEX = [{"left": "$$", "right": "$$", "display": True},
         {"left": "$", "right": "$", "display": False}]


def tables_for(model_key: str, allow_download: bool) -> tuple[LoadedModel, BiasAnalysis]:
    """The model's tables, read (and DPBs evaluated) once per (model shown, weights): they do
    not depend on any image, so the key has none. Kept in the app's bounded result cache."""
    loaded = lens_model("bias", model_key, allow_download)
    key = ("bias", loaded.shown.key, loaded.weights_id)
    return loaded, RESULTS.get_or_create(key, lambda: analyze(loaded.model))


def groups_for(image: LoadedImage, model_key: str, geometry: str, allow_download: bool) -> BiasImage:
    """A CrossFormer's groups on ``image`` (cached per image like every lens result)."""
    return lens_analysis("bias", image, model_key, geometry, allow_download, analyze_image)[1]


@dataclass
class BiasView:
    """What the user has chosen: stage, block, head (None = all heads), DPB group size G′."""

    stage: int = 0
    block: int = 0
    head: int | None = None
    group: int | None = None  # None: the block's trained G

    def clamp(self, analysis: BiasAnalysis) -> "BiasView":
        stage = min(max(self.stage, 0), analysis.num_stages - 1)
        block = min(max(self.block, 0), analysis.depths[stage] - 1)
        item = analysis.block(stage, block)
        head = self.head if self.head is not None and 0 <= self.head < item.heads else None
        group = self.group if self.group is not None else item.group_size
        if item.has_dpb:
            group = min(max(group, min(item.dpb)), max(item.dpb))
        return BiasView(stage, block, head, group)


def _fmt(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}×{pair[1]}"


def _kind(item: BlockBias, lang: str) -> str:
    return {"SDA": t("bias_sda", lang), "LDA": t("bias_lda", lang),
            "W-MSA": t("swin_regular", lang), "SW-MSA": t("swin_shifted", lang)}[item.kind]


def _choices(analysis: BiasAnalysis, view: BiasView, lang: str):
    stage_choices = []
    for s in range(analysis.num_stages):
        window = analysis.block(s, 0).window
        size = f"M = {_fmt(window)}" if analysis.family == "swin" else f"G = {window[0]}"
        stage_choices.append((f"{t('stage', lang)} {s} · {size}", s))
    block_choices = [(f"{b} · {analysis.block(view.stage, b).kind}", b)
                     for b in range(analysis.depths[view.stage])]
    heads = analysis.block(view.stage, view.block).heads
    head_choices = [(t("bias_head_all", lang), ALL)]
    head_choices += [(t("head_n", lang, n=h), h) for h in range(heads)]
    return stage_choices, block_choices, head_choices


def info_markdown(analysis: BiasAnalysis, item: BlockBias, lang: str) -> str:
    """What the block's bias is made of, and for a DPB block the DPB ≡ RPB check."""
    kind = _kind(item, lang)
    rows, n = item.table.shape[0], item.area
    if item.source == "cpb":
        text = t("bias_info_cpb", lang, name=item.name, kind=kind, m=_fmt(item.window), heads=item.heads,
                 hidden=item.dpb_hidden, rows=rows, span=f"{item.span[0]}×{item.span[1]}")
        return f"{text}\n\n{t('bias_check_cpb', lang, diff=analysis.cpb_logit_diff)}"
    if item.family == "swin":
        return t("bias_info_swin", lang, name=item.name, kind=kind, m=_fmt(item.window),
                 heads=item.heads, rows=rows, span=f"{item.span[0]}×{item.span[1]}", n=n)
    if item.source == "none":
        return t("bias_info_none", lang, name=item.name, kind=kind)
    if item.source == "rpb":
        return t("bias_info_rpb", lang, name=item.name, kind=kind, g=item.group_size, heads=item.heads)
    text = t("bias_info_dpb", lang, name=item.name, kind=kind, g=item.group_size, heads=item.heads,
             hidden=item.dpb_hidden, rows=rows)
    worst = analysis.dpb_max_diff
    key = "bias_check_ok" if worst is not None and worst <= EXACT else "bias_check_bad"
    check = t(key, lang, g=item.group_size, diff=item.dpb_max_diff, worst=worst,
              n=sum(b.has_dpb for b in analysis.blocks))
    return f"{text}\n\n{check}"


def formula_markdown(item: BlockBias, lang: str) -> str:
    mh, mw = item.window
    return t("bias_formula", lang, rows=item.table.shape[0], a=mh - 1, b=2 * mw - 1, c=mw - 1)


def groups_figure(analysis: BiasAnalysis, groups: BiasImage | None, view: BiasView, lang: str):
    if groups is None:
        return figures.message_figure(t("fig_bias_need_image", lang))
    stage, block = view.stage, view.block
    return figures.groups_figure(
        groups.model_image, groups.group_maps[stage][block], groups.layouts[stage][block],
        groups.token_px[stage], stage, block, analysis.block(stage, block).kind == "LDA", lang)


def render(loaded: LoadedModel, analysis: BiasAnalysis, groups: BiasImage | None, view: BiasView,
           lang: str) -> dict:
    """Every output of the tab by name, for this (clamped) view; nothing is computed but figures."""
    item = analysis.block(view.stage, view.block)
    crossformer = analysis.family == "crossformer"
    stage_choices, block_choices, head_choices = _choices(analysis, view, lang)
    if item.has_dpb:
        lo, hi = min(item.dpb), max(item.dpb)
        slider = gr.update(visible=True, minimum=lo, maximum=hi, value=view.group,
                           label=t("bias_group_size", lang))
        dpb_plot = gr.update(visible=True, value=figures.dpb_figure(item, view.group, view.head, lang))
    else:
        slider = gr.update(visible=False)
        dpb_plot = gr.update(visible=False, value=None)
    groups_plot = (gr.update(visible=True, value=groups_figure(analysis, groups, view, lang))
                   if crossformer else gr.update(visible=False, value=None))
    return {
        "stage": gr.update(choices=stage_choices, value=view.stage),
        "block": gr.update(choices=block_choices, value=view.block),
        "head": gr.update(choices=head_choices, value=ALL if view.head is None else view.head),
        "group": slider,
        "banner": banner_markdown(loaded, lang),
        "info": info_markdown(analysis, item, lang),
        "formula": formula_markdown(item, lang),
        "table_plot": figures.table_figure(item, view.head, lang),
        "dpb_plot": dpb_plot,
        "gathered_plot": figures.gathered_figure(item, view.head, lang),
        "index_plot": figures.index_figure(item, lang),
        "groups_plot": groups_plot,
    }


@dataclass
class Controls:
    image: LoadedImage | None
    model_key: str
    geometry: str
    allow_download: bool
    stage: int | None
    block: int | None
    head: int | None
    group: float | None
    lang: str

    def view(self) -> BiasView:
        head = None if self.head in (None, ALL) else int(self.head)
        return BiasView(int(self.stage or 0), int(self.block or 0), head,
                        None if self.group is None else int(round(float(self.group))))


@user_errors
def refresh(c: Controls) -> dict:
    loaded, analysis = tables_for(c.model_key, c.allow_download)
    view = c.view().clamp(analysis)
    groups = None
    if analysis.family == "crossformer" and c.image is not None:
        groups = groups_for(c.image, c.model_key, c.geometry or "model", c.allow_download)
    return render(loaded, analysis, groups, view, c.lang)


def build(ctx: PageContext) -> None:
    entries = entries_for_lens("bias")
    if not entries:
        return
    tr = ctx.translations
    with gr.Tab(t("tab_bias", "en"), id="bias") as tab:
        tr.add(tab, "tab_bias")
        model, geometry, allow, banner = model_controls(tr, entries, entries[0].key, "bias",
                                                        geometries=("model",))
        with gr.Row():
            stage = tr.add(gr.Dropdown([], label=t("stage", "en"), elem_id="bias-stage"), "stage")
            block = tr.add(gr.Dropdown([], label=t("block", "en"), elem_id="bias-block"), "block")
            head = tr.add(gr.Dropdown([(t("bias_head_all", "en"), ALL)], value=ALL,
                                      label=t("head", "en"), elem_id="bias-head"), "head")
            group = tr.add(gr.Slider(2, 14, value=DEFAULT_G, step=1, label=t("bias_group_size", "en"),
                                     elem_id="bias-group", visible=False), "bias_group_size")
        info = gr.Markdown(elem_id="bias-info")
        with gr.Row():
            table_plot = gr.Plot(elem_id="bias-table-plot", show_label=False)
            dpb_plot = gr.Plot(elem_id="bias-dpb-plot", show_label=False, visible=False)
        tr.add(gr.Markdown(t("bias_caption", "en"), elem_classes="caption"), "bias_caption", "value")
        gathered_plot = gr.Plot(elem_id="bias-gathered-plot", show_label=False)
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                index_plot = gr.Plot(elem_id="bias-index-plot", show_label=False)
            with gr.Column(scale=3, min_width=320):
                formula = gr.Markdown(elem_id="bias-formula", latex_delimiters=LATEX)
        groups_plot = gr.Plot(elem_id="bias-groups-plot", show_label=False, visible=False)

    controls = [ctx.image, model, geometry, allow, stage, block, head, group, ctx.lang]
    parts = dict(stage=stage, block=block, head=head, group=group, banner=banner, info=info, formula=formula,
                 table_plot=table_plot, dpb_plot=dpb_plot, gathered_plot=gathered_plot, index_plot=index_plot,
                 groups_plot=groups_plot)
    outputs = list(parts.values())
    redraw = by_component(parts, refresh)

    def analyse(*values, progress=None):
        return redraw(Controls(*values))

    def on_change(*values):
        return redraw(Controls(*values))

    for trigger in (model.change, allow.input):
        trigger(with_progress(analyse), controls, outputs, api_visibility="private")
    for control in (stage, block, head):
        control.input(on_change, controls, outputs, api_visibility="private", show_progress="hidden")
    group.input(on_change, controls, outputs, api_visibility="private", show_progress="hidden",
                trigger_mode="always_last")
    ctx.lenses.append(TabHooks("bias", tab, analyse, on_change, controls, outputs, outputs))


def api(model: str, arrays: str = "") -> dict:
    """The position-bias lens, as `python -m explorer export bias` writes it (no image): every
    block's bias table and gathered bias; for CrossFormer the DPB at several group sizes and the
    equivalent RPB table. Small arrays come by default; name others in ``arrays``."""
    from explorer.lenses.bias.compute import export_arrays

    entry = model_for_lens("bias", model)
    loaded, analysis = tables_for(entry.key, allow_download=False)
    extra = {"dpb_max_diff": float(analysis.dpb_max_diff)} if analysis.family == "crossformer" else {}
    if analysis.cpb_logit_diff is not None:
        extra["cpb_max_abs_logit_diff"] = analysis.cpb_logit_diff
    return arrays_reply(loaded, export_arrays(analysis), arrays, family=analysis.family, **extra)
