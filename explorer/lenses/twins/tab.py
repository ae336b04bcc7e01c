"""The Twins tab: a stage's locally-grouped windows (LSA) and sub-sampled key grid (GSA) on
the image, a clicked token's attention in both blocks of a pair, what the PEG adds per stage,
and the shape table that shows where the PEG sits. The model runs once per image; every
control redraws from the cached analysis."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.data_classes import FileData

from explorer.core.images import LoadedImage
from explorer.core.preprocess import check_geometry
from explorer.core.weights import LoadedModel
from explorer.lenses.registry import lens_analysis, model_for_lens
from explorer.lenses.twins import figures
from explorer.lenses.twins.compute import TwinsAnalysis, TwinsBlock, TwinsImageAnalysis, analyze_image, total_stride
from explorer.ui.api import arrays_reply
from explorer.ui.i18n import t
from explorer.ui.stage_tab import StageLens, StagePick, head_choices
from explorer.ui.uploads import open_uploaded_image

LATEX = [{"left": "$", "right": "$", "display": False}]


def analysis_for(image: LoadedImage, model_key: str, geometry: str,
                 allow_download: bool) -> tuple[LoadedModel, TwinsImageAnalysis]:
    return lens_analysis("twins", image, model_key, geometry, allow_download, analyze_image)


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


def _choices(result: TwinsImageAnalysis, view: TwinsView, lang: str):
    a = result.twins
    stage_choices = [(f"{t('stage', lang)} {s} · {h}×{w}", s) for s, (h, w) in enumerate(a.stage_grids)]
    block_choices = [(f"{b.block} · {t('tw_kind_' + b.kind.lower(), lang)}", b.block)
                     for b in a.stage_blocks(view.stage)]
    return stage_choices, block_choices, head_choices(a.block(view.stage, view.block).heads, lang)


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


def draw(loaded: LoadedModel, result: TwinsImageAnalysis, view: TwinsView, lang: str) -> dict:
    """The Twins outputs for this (clamped) view: figures only, the model does not run."""
    a, image = result.twins, result.model_image
    stage, query = view.stage, view.query
    lsa, gsa = block_pair(a, stage, view.block)
    grid = a.stage_grids[stage]
    lsa_fig = (figures.lsa_attention_figure(a, image, lsa, view.head, query, lang) if lsa is not None
               else figures.message_figure(t("tw_no_lsa", lang, stage=stage)))
    gsa_fig = (figures.gsa_attention_figure(a, image, gsa, view.head, query, lang) if gsa is not None
               else figures.message_figure(t("tw_no_gsa", lang, stage=stage)))
    return {
        "query": t("cf_query", lang, r=query[0], c=query[1], stage=stage, h=grid[0], w=grid[1],
                   px=a.token_px[stage]),
        "info": info_markdown(result, view, lang),
        "layout": figures.layout_figure(a, image, stage, (lsa, gsa), query, lang),
        "lsa": lsa_fig,
        "gsa": gsa_fig,
        "peg_bars": figures.peg_bars_figure(a, lang),
        "peg_map": figures.peg_map_figure(a, image, stage, lang),
        "shapes": shape_table(a, lang),
    }


def _beside(tr) -> dict:
    info = gr.Markdown(elem_id="tw-info")
    tr.add(gr.Markdown(t("tw_help", "en"), latex_delimiters=LATEX), "tw_help", "value")  # text only: no output
    return {"info": info}


def _below(tr) -> dict:
    parts = {"layout": gr.Plot(elem_id="tw-layout-plot", show_label=False)}
    with gr.Row():
        parts["lsa"] = gr.Plot(elem_id="tw-lsa-plot", show_label=False)
        parts["gsa"] = gr.Plot(elem_id="tw-gsa-plot", show_label=False)
    tr.add(gr.Markdown(t("tw_caption", "en"), elem_classes="caption"), "tw_caption", "value")
    with gr.Row():
        parts["peg_bars"] = gr.Plot(elem_id="tw-peg-bars", show_label=False)
        parts["peg_map"] = gr.Plot(elem_id="tw-peg-map", show_label=False)
    parts["shapes"] = gr.Markdown(elem_id="tw-shapes")
    return parts


# a new stage starts at its first block (an LSA/GSA pair in SVT)
TAB = StageLens(key="twins", prefix="tw", picker_label="tw_picker", analyse=analysis_for, view=TwinsView,
                grids=lambda result: result.twins.stage_grids, image_of=lambda result: result.model_image,
                choices=_choices, draw=draw, beside=_beside, below=_below, block_on_new_stage=0,
                step_multiple=lambda loaded: (total_stride(loaded.model),) * 2)
build, render = TAB.build, TAB.render


def api(image: FileData, model: str, geometry: str = "model", arrays: str = "") -> dict:
    """The Twins lens on an uploaded image, as `python -m explorer export twins` writes it: LSA
    and GSA probabilities and geometry per block, the PEG's share per stage. Small arrays come by
    default; name others in ``arrays`` (comma-separated)."""
    from explorer.lenses.twins.compute import export_arrays

    entry = model_for_lens("twins", model)
    geometry = check_geometry(geometry)
    loaded, result = analysis_for(open_uploaded_image(image), entry.key, geometry, allow_download=False)
    return arrays_reply(loaded, export_arrays(result), arrays, variant=result.twins.variant)
