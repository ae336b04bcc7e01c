"""The Twins tab: a stage's locally-grouped windows (LSA) and sub-sampled key grid (GSA) on
the image, a clicked token's attention in both blocks of a pair, what the PEG adds per stage,
and the shape table that shows where the PEG sits. The model runs once per image; every
control redraws from the cached analysis."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.data_classes import FileData

from explorer.core.images import LoadedImage
from explorer.core.results import cached_analysis
from explorer.core.weights import LoadedModel
from explorer.lenses.registry import entries_for_lens
from explorer.lenses.plotting import clicked_patch, patch_picker_image
from explorer.lenses.twins import figures
from explorer.lenses.twins.compute import TwinsAnalysis, TwinsBlock, TwinsImageAnalysis, analyze_image
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
                 allow_download: bool) -> tuple[LoadedModel, TwinsImageAnalysis]:
    return cached_analysis("twins", image, model_key, geometry, allow_download, analyze_image)


def block_pair(a: TwinsAnalysis, stage: int, block: int) -> tuple[TwinsBlock | None, TwinsBlock | None]:
    """(LSA block, GSA block) shown side by side: SVT pairs block 2k (LSA) with 2k+1 (GSA);
    PCPVT has GSA only."""
    item = a.block(stage, block)
    if item.kind == "GSA":
        partner = a.block(stage, block - 1) if block > 0 else None
        return (partner if partner is not None and partner.kind == "LSA" else None), item
    depth = a.depths[stage]
    partner = a.block(stage, block + 1) if block + 1 < depth else None
    return item, partner


@dataclass
class TwinsView(StagePick):
    """Stage (None: 0), block (None: 0), head (None: mean of heads), query token."""

    def clamp(self, result: TwinsImageAnalysis) -> "TwinsView":
        a = result.twins
        stage = min(max(0 if self.stage is None else self.stage, 0), a.num_stages - 1)
        block = min(max(0 if self.block is None else self.block, 0), a.depths[stage] - 1)
        heads = a.block(stage, block).heads
        head = self.head if self.head is not None and 0 <= self.head < heads else None
        rows, cols = a.stage_grids[stage]
        query = self.query or (rows // 2, cols // 2)
        query = (min(max(query[0], 0), rows - 1), min(max(query[1], 0), cols - 1))
        return TwinsView(stage, block, head, query)


def _choices(a: TwinsAnalysis, view: TwinsView, lang: str):
    stage_choices = [(f"{t('stage', lang)} {s} · {h}×{w}", s) for s, (h, w) in enumerate(a.stage_grids)]
    block_choices = [(f"{b.block} · {t('tw_kind_' + b.kind.lower(), lang)}", b.block)
                     for b in a.stage_blocks(view.stage)]
    heads = a.block(view.stage, view.block).heads
    head_choices = [(t("head_mean", lang), MEAN)] + [(t("head_n", lang, n=h), h) for h in range(heads)]
    return stage_choices, block_choices, head_choices


def info_markdown(result: TwinsImageAnalysis, view: TwinsView, lang: str) -> str:
    a = result.twins
    (h, w), px = a.stage_grids[view.stage], a.token_px[view.stage]
    lines = [t("tw_info_stage", lang, stage=view.stage, h=h, w=w, px=px, variant=a.variant,
               blocks=", ".join(f"{b.block} {b.kind}" for b in a.stage_blocks(view.stage)))]
    lsa, gsa = block_pair(a, view.stage, view.block)
    if lsa is not None:
        window, slot = lsa.window_of(*view.query)
        lines.append(t("tw_info_lsa", lang, block=lsa.block, n=lsa.windows[0] * lsa.windows[1],
                       ws=lsa.ws, px=lsa.ws * px, window=window, slot=slot, r=view.query[0], c=view.query[1]))
    if gsa is not None:
        lines.append(t("tw_info_gsa", lang, block=gsa.block, sr=gsa.sr, kh=gsa.key_grid[0], kw=gsa.key_grid[1],
                       n=h * w, m=gsa.key_grid[0] * gsa.key_grid[1]))
    return "\n\n".join(lines)


def shape_table(a: TwinsAnalysis, lang: str) -> str:
    """Every step's output shape in execution order; the PEG rows are marked."""
    rows = [t("tw_shapes_title", lang), "", t("tw_shapes_columns", lang), "|---|---|---|"]
    for name, shape in a.shapes:
        parts = name.split(".")
        if parts[0] == "patch_embeds":
            note = t("tw_shape_embed", lang, stage=parts[1])
        elif parts[0] == "blocks":
            item = a.block(int(parts[1]), int(parts[2]))
            note = (t("tw_shape_lsa", lang, ws=item.ws) if item.kind == "LSA"
                    else t("tw_shape_gsa", lang, sr=item.sr, kh=item.key_grid[0], kw=item.key_grid[1]))
        elif parts[0] == "pos_block":
            peg = next(p for p in a.peg if p.stage == int(parts[1]))
            note = t("tw_shape_peg", lang, rel=peg.relative)
            rows.append(f"| **`{name}`** | **{' × '.join(map(str, shape))}** | {note} |")
            continue
        elif name == "norm":
            note = t("tw_shape_norm", lang)
        else:
            note = t("tw_shape_head", lang)
        rows.append(f"| `{name}` | {' × '.join(map(str, shape))} | {note} |")
    return "\n".join(rows)


def render(loaded: LoadedModel, result: TwinsImageAnalysis, view: TwinsView, lang: str) -> tuple:
    """Every output of the tab for this (clamped) view: figures only, the model does not run."""
    a, image = result.twins, result.model_image
    stage, query = view.stage, view.query
    lsa, gsa = block_pair(a, stage, view.block)
    stage_choices, block_choices, head_choices = _choices(a, view, lang)
    grid = a.stage_grids[stage]
    px = a.token_px[stage]
    query_md = t("cf_query", lang, r=query[0], c=query[1], stage=stage, h=grid[0], w=grid[1], px=px)
    steps_md = numbered(result.steps, lang)
    lsa_fig = (figures.lsa_attention_figure(a, image, lsa, view.head, query, lang) if lsa is not None
               else figures.message_figure(t("tw_no_lsa", lang, stage=stage)))
    gsa_fig = (figures.gsa_attention_figure(a, image, gsa, view.head, query, lang) if gsa is not None
               else figures.message_figure(t("tw_no_gsa", lang, stage=stage)))
    return (
        {"stage": stage, "block": view.block, "head": view.head, "query": query},
        gr.update(choices=stage_choices, value=stage),
        gr.update(choices=block_choices, value=view.block),
        gr.update(choices=head_choices, value=MEAN if view.head is None else view.head),
        banner_markdown(loaded, lang),
        patch_picker_image(image, grid, query, PICKER_SIDE),
        query_md,
        predictions_label(result.predictions, lang) or None,
        steps_md,
        info_markdown(result, view, lang),
        figures.layout_figure(a, image, stage, (lsa, gsa), query, lang),
        lsa_fig,
        gsa_fig,
        figures.peg_bars_figure(a, lang),
        figures.peg_map_figure(a, image, stage, lang),
        shape_table(a, lang),
    )


class Controls(StageControls):
    def analysis(self) -> tuple[LoadedModel, TwinsImageAnalysis]:
        return analysis_for(self.require_image(), self.model_key, self.geometry or "model", self.allow_download)

    def chosen(self, **changes) -> TwinsView:
        return TwinsView(**self.picked(**changes))


@user_errors
def refresh(c: Controls, **changes) -> tuple:
    loaded, result = c.analysis()
    return render(loaded, result, c.chosen(**changes).clamp(result), c.lang)


@user_errors
def change_stage(c: Controls) -> tuple:
    """A new stage has its own map size: carry the query over in image coordinates."""
    loaded, result = c.analysis()
    grids = result.twins.stage_grids
    new = min(int(c.stage or 0), len(grids) - 1)
    view = c.chosen(stage=new, block=0, query=c.query_on_stage(grids, new))
    return render(loaded, result, view.clamp(result), c.lang)


@user_errors
def click(c: Controls, xy: tuple[float, float]) -> tuple:
    loaded, result = c.analysis()
    view = c.chosen().clamp(result)
    view.query = clicked_patch(result.model_image, result.twins.stage_grids[view.stage], xy, PICKER_SIDE)
    return render(loaded, result, view, c.lang)


def build(ctx: PageContext) -> None:
    entries = entries_for_lens("twins")
    if not entries:
        return
    tr = ctx.translations
    with gr.Tab(t("tab_twins", "en"), id="twins") as tab:
        tr.add(tab, "tab_twins")
        view = gr.State({})
        model, geometry, allow, banner = model_controls(tr, entries, entries[0].key, "tw")
        with gr.Row():
            with gr.Column(scale=2):
                picker, query_md, predictions, steps = picker_column(tr, "tw", "tw_picker")
            with gr.Column(scale=3):
                stage, block, head = stage_block_head(tr, "tw")
                info = gr.Markdown(elem_id="tw-info")
                tr.add(gr.Markdown(t("tw_help", "en"), latex_delimiters=LATEX), "tw_help", "value")
        layout_plot = gr.Plot(elem_id="tw-layout-plot", show_label=False)
        with gr.Row():
            lsa_plot = gr.Plot(elem_id="tw-lsa-plot", show_label=False)
            gsa_plot = gr.Plot(elem_id="tw-gsa-plot", show_label=False)
        with gr.Row():
            peg_bars = gr.Plot(elem_id="tw-peg-bars", show_label=False)
            peg_map = gr.Plot(elem_id="tw-peg-map", show_label=False)
        shapes = gr.Markdown(elem_id="tw-shapes")

    outputs = [view, stage, block, head, banner, picker, query_md, predictions, steps, info,
               layout_plot, lsa_plot, gsa_plot, peg_bars, peg_map, shapes]
    wire_stage_lens(ctx, "twins", tab, model=model, geometry=geometry, allow=allow, stage=stage,
                    block=block, head=head, view=view, picker=picker, outputs=outputs,
                    controls_type=Controls, refresh=refresh, change_stage=change_stage, click=click)


def api(image: FileData, model: str, geometry: str = "model", arrays: str = "") -> dict:
    """The Twins lens on an uploaded image, as `python -m explorer export twins` writes it: LSA
    and GSA probabilities and geometry per block, the PEG's share per stage. Small arrays come by
    default; name others in ``arrays`` (comma-separated)."""
    from explorer.lenses.twins.compute import export_arrays

    entry = model_for_lens("twins", model)
    geometry = check_geometry(geometry)
    loaded, result = analysis_for(open_uploaded_image(image), entry.key, geometry, allow_download=False)
    return arrays_reply(loaded, export_arrays(result), arrays, variant=result.twins.variant)
