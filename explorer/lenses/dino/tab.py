"""The DINO tab: the last block's CLS self-attention per head over the image, the official
threshold masks, the same image through a second model side by side (supervised vs DINO), and
the multi-crop views of the recipe. Each model runs once per (image, geometry); the threshold,
the head, the crops and the language only redraw (the threshold redraws only its three outputs)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
from gradio.data_classes import FileData
import numpy as np
from PIL import Image

from explorer.core import arguments
from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage
from explorer.core.results import RESULTS
from explorer.core.weights import LoadedModel
from explorer.core.zoo import ModelEntry
from explorer.lenses.registry import entries_for_lens
from explorer.lenses.dino import figures
from explorer.lenses.dino.features import DEFAULT_PCA_THRESHOLD
from explorer.lenses.dino.compute import (DEFAULT_LOCAL_CROPS, DEFAULT_THRESHOLD, MAX_LOCAL_CROPS, DinoAnalysis,
                                          analyze_image, check_threshold, crop_view, kept_mass, multi_crop_boxes)
from explorer.ui.i18n import t
from explorer.core.text import numbered
from explorer.core.preprocess import check_geometry
from explorer.lenses.registry import lens_analysis, model_for_lens
from explorer.ui.api import arrays_reply
from explorer.ui.uploads import open_uploaded_image
from explorer.ui.widgets import (HEAD_MEAN, TabHooks, PageContext, by_component, head_choices, banner_markdown, model_choices, model_controls,
                                 user_errors, with_progress)

MEAN = HEAD_MEAN
DEFAULT_COMPARE = "demo_vit"  # the bundled supervised ViT: the paper's supervised side
DISPLAY_SIDE = 640  # the crop figure shows the image at most this large (boxes stay in its own pixels)
LATEX = [{"left": "$", "right": "$", "display": False}]


def is_dino(entry: ModelEntry) -> bool:
    """DINO checkpoints (hub ``.dino`` tags and the bundled demo) stand in for each other."""
    return entry.family == "dino"


def model_entries() -> tuple[ModelEntry, ...]:
    """Every ViT of the zoo, the DINO ones first (the bundled demo leads: it works offline)."""
    entries = entries_for_lens("dino")
    return tuple(e for e in entries if is_dino(e)) + tuple(e for e in entries if not is_dino(e))


def default_compare(entries: tuple[ModelEntry, ...]) -> str:
    keys = [e.key for e in entries]
    if DEFAULT_COMPARE in keys:
        return DEFAULT_COMPARE
    supervised = [e.key for e in entries if not is_dino(e)]
    return (supervised or keys)[0]


@dataclass
class Controls:
    """The tab's inputs, in the order of its event ``controls`` list."""

    image: LoadedImage | None
    model_key: str
    geometry: str | None
    allow_download: bool
    compare_key: str | None
    threshold: float
    head: int | None
    n_local: float | None
    seed: float | None
    pca_threshold: float | None
    lang: str

    def require_image(self) -> LoadedImage:
        if self.image is None:
            raise UserFacingError(t("need_image", "en"), t("need_image", "zh"))
        return self.image

    def _analysis(self, key: str) -> tuple[LoadedModel, DinoAnalysis]:
        return lens_analysis("dino", self.require_image(), key, self.geometry or "native", self.allow_download,
                               analyze_image)

    def analysis(self) -> tuple[LoadedModel, DinoAnalysis]:
        return self._analysis(self.model_key)

    def comparison(self) -> tuple[LoadedModel, DinoAnalysis]:
        return self._analysis(self.compare_key or default_compare(model_entries()))

    def threshold_value(self) -> float:
        return check_threshold(DEFAULT_THRESHOLD if self.threshold is None else self.threshold)

    def pca_threshold_value(self) -> float:
        return check_threshold(DEFAULT_PCA_THRESHOLD if self.pca_threshold is None else self.pca_threshold)

    def head_index(self, heads: int) -> int | None:
        head = MEAN if self.head is None else int(self.head)
        return head if 0 <= head < heads else None

    def crop_settings(self) -> tuple[int, int]:
        """(N local crops, seed) as whole numbers in range, or one message that says the range."""
        n_local = arguments.whole_number(DEFAULT_LOCAL_CROPS if self.n_local is None else self.n_local, 0,
                                         MAX_LOCAL_CROPS, (t("dn_n_local", "en"), t("dn_n_local", "zh")))
        return n_local, arguments.seed(0 if self.seed is None else self.seed)


# --------------------------------------------------------------------------- what is shown

def info_markdown(loaded: LoadedModel, a: DinoAnalysis, threshold: float, lang: str) -> str:
    """The model line and, per head, what the threshold keeps."""
    h, w = a.model_image.shape[:2]
    lines = [t("dn_info", lang, model=loaded.shown.label(lang), block=a.block, depth=a.block + 1,
               heads=a.num_heads, rows=a.grid[0], cols=a.grid[1], p=a.patch_size[0], w=w, h=h)]
    if not is_dino(loaded.shown):
        lines.append(t("dn_not_dino", lang))
    masks = a.masks(threshold)
    mass = kept_mass(a.attention, masks)
    share = a.patch_share
    table = [t("dn_table_columns", lang, t=threshold), "|---|---|---|---|"]
    for head in range(a.num_heads):
        table.append(f"| {head} | {int(masks[head].sum())} / {a.num_patches} | {mass[head]:.1%} | "
                     f"{share[head]:.1%} |")
    table.append(f"| {t('dn_mean_row', lang)} | {masks.sum(axis=(1, 2)).mean():.1f} / {a.num_patches} | "
                 f"{mass.mean():.1%} | {share.mean():.1%} |")
    return "\n\n".join(lines) + "\n\n" + "\n".join(table)


def steps_markdown(a: DinoAnalysis, lang: str) -> str:
    return f"**{t('preprocessing', lang)}**\n\n" + numbered(a.steps, lang)


def compare_banner(loaded: LoadedModel, lang: str) -> str:
    return f"**{t('dn_compare_weights', lang)}:** {loaded.shown.label(lang)} · " + banner_markdown(loaded, lang)


def _display(image: LoadedImage) -> np.ndarray:
    """The image at most DISPLAY_SIDE px, for the crop figure (kept with the results)."""
    def shrink() -> np.ndarray:
        picture = image.image.convert("RGB")
        picture.thumbnail((DISPLAY_SIDE, DISPLAY_SIDE), Image.BICUBIC)
        return np.asarray(picture)

    return RESULTS.get_or_create(("dino-display", image.digest), shrink)


def threshold_outputs(c: Controls) -> dict:
    """What a threshold change redraws: the info line, the masks and the two models side by side."""
    loaded, a = c.analysis()
    other_loaded, other = c.comparison()
    threshold = c.threshold_value()
    models = [(loaded.shown.label(c.lang), a), (other_loaded.shown.label(c.lang), other)]
    return {"info": info_markdown(loaded, a, threshold, c.lang),
            "masks_plot": figures.masks_figure(a, threshold, c.lang),
            "compare_plot": figures.compare_figure(models, threshold, c.lang)}


def features_markdown(loaded: LoadedModel | None, a: DinoAnalysis, lang: str) -> str:
    """How many high-norm tokens, and where the registers' norms and attention go."""
    norms = a.token_norms
    lines = [t("dn_norms_line", lang, k=int(a.high_norm.sum()), n=a.num_patches, share=float(a.high_norm.mean()),
               median=float(np.median(norms)), top=float(norms.max()))]
    registers = [i for i, name in enumerate(a.prefix_names) if name.startswith("REG")]
    if registers:
        share = float(a.prefix_attention[:, registers].sum(-1).mean())
        values = ", ".join(f"{a.prefix_norms[i]:.1f}" for i in registers)
        lines.append(t("dn_registers_line", lang, r=len(registers), norms=values, share=share))
    else:
        lines.append(t("dn_no_registers", lang))
    return " ".join(lines)


def features_outputs(c: Controls) -> dict:
    """What the PCA threshold redraws: the tokens' figure for both models and its lines (no model runs)."""
    loaded, a = c.analysis()
    other_loaded, other = c.comparison()
    rows = [(loaded, a), (other_loaded, other)]
    lines = [f"**{m.shown.label(c.lang)}**: {features_markdown(None, analysis, c.lang)}" for m, analysis in rows]
    # the panels name each row by its key: a full label is wider than a third of the figure
    models = [(m.shown.key, analysis) for m, analysis in rows]
    return {"features_plot": figures.features_figure(models, c.pca_threshold_value(), c.lang),
            "features_info": "\n\n".join(lines)}


def crop_outputs(c: Controls) -> dict:
    """The crop boxes on the image and the views: no model involved."""
    image = c.require_image()
    n_local, seed = c.crop_settings()
    boxes = multi_crop_boxes(image.image.size, n_local, seed)
    views = [crop_view(image.image, box) for box in boxes]
    return {"crops_plot": figures.crops_figure(_display(image), image.image.size, boxes, seed, c.lang),
            "views_plot": figures.crop_views_figure(views, boxes, c.lang)}


def render(c: Controls) -> dict:
    """Every output of the tab by name; the models run only on a cache miss."""
    loaded, a = c.analysis()
    other_loaded, _ = c.comparison()
    head = c.head_index(a.num_heads)
    return {
        "head": gr.update(choices=head_choices(a.num_heads, c.lang), value=MEAN if head is None else head),
        "banner": banner_markdown(loaded, c.lang),
        "steps": steps_markdown(a, c.lang),
        "heads_plot": figures.head_gallery_figure(a, c.lang),
        "overlay_plot": figures.attention_overlay_figure(a, head, c.lang),
        "other_banner": compare_banner(other_loaded, c.lang),
        **threshold_outputs(c),
        **features_outputs(c),
        **crop_outputs(c),
    }


@user_errors
def refresh(c: Controls) -> dict:
    return render(c)


@user_errors
def change_threshold(c: Controls) -> dict:
    return threshold_outputs(c)


@user_errors
def change_pca_threshold(c: Controls) -> dict:
    return features_outputs(c)


@user_errors
def change_head(c: Controls) -> dict:
    _, a = c.analysis()
    return {"overlay_plot": figures.attention_overlay_figure(a, c.head_index(a.num_heads), c.lang)}


@user_errors
def change_compare(c: Controls) -> dict:
    other_loaded, _ = c.comparison()
    return {"other_banner": compare_banner(other_loaded, c.lang),
            "compare_plot": threshold_outputs(c)["compare_plot"], **features_outputs(c)}


@user_errors
def change_crops(c: Controls) -> dict:
    return crop_outputs(c)


def build(ctx: PageContext) -> None:
    entries = model_entries()
    if not entries:
        return
    tr = ctx.translations
    with gr.Tab(t("tab_dino", "en"), id="dino") as tab:
        tr.add(tab, "tab_dino")
        model, geometry, allow, banner = model_controls(tr, entries, entries[0].key, "dn",
                                                        geometries=("native", "model"))
        tr.add(gr.Markdown(t("dn_help", "en"), latex_delimiters=LATEX), "dn_help", "value")
        with gr.Row():
            threshold = tr.add(gr.Slider(0.0, 1.0, value=DEFAULT_THRESHOLD, step=0.05, label=t("dn_threshold", "en"),
                                         elem_id="dn-threshold", scale=2), "dn_threshold")
            head = tr.add(gr.Dropdown(head_choices(0, "en"), value=MEAN, label=t("dn_overlay_head", "en"),
                                      elem_id="dn-head", scale=1), "dn_overlay_head")
            compare = tr.add(gr.Dropdown(model_choices(entries, "en"), value=default_compare(entries),
                                         label=t("dn_compare", "en"), elem_id="dn-compare", scale=2),
                             update=lambda lang: dict(label=t("dn_compare", lang),
                                                      choices=model_choices(entries, lang)))
        info = gr.Markdown(elem_id="dn-info")
        heads_plot = gr.Plot(elem_id="dn-heads-plot", show_label=False)
        with gr.Row():
            with gr.Column(scale=3):
                overlay_plot = gr.Plot(elem_id="dn-overlay-plot", show_label=False)
                tr.add(gr.Markdown(t("dn_caption", "en"), elem_classes="caption"), "dn_caption", "value")
            with gr.Column(scale=1):
                steps = gr.Markdown(elem_id="dn-steps")
        masks_plot = gr.Plot(elem_id="dn-masks-plot", show_label=False)
        other_banner = gr.Markdown(elem_id="dn-compare-banner")
        compare_plot = gr.Plot(elem_id="dn-compare-plot", show_label=False)
        tr.add(gr.Markdown(t("dn_features_help", "en")), "dn_features_help", "value")
        pca_threshold = tr.add(gr.Slider(0.0, 1.0, value=DEFAULT_PCA_THRESHOLD, step=0.05,
                                         label=t("dn_pca_threshold", "en"), elem_id="dn-pca-threshold"),
                               "dn_pca_threshold")
        features_info = gr.Markdown(elem_id="dn-features-info")
        features_plot = gr.Plot(elem_id="dn-features-plot", show_label=False)
        tr.add(gr.Markdown(t("dn_crops_help", "en")), "dn_crops_help", "value")
        with gr.Row():
            n_local = tr.add(gr.Slider(0, MAX_LOCAL_CROPS, value=DEFAULT_LOCAL_CROPS, step=1,
                                       label=t("dn_n_local", "en"), elem_id="dn-n-local"), "dn_n_local")
            seed = tr.add(gr.Number(value=0, precision=0, minimum=0, label=t("dn_seed", "en"), elem_id="dn-seed"),
                          "dn_seed")
        crops_plot = gr.Plot(elem_id="dn-crops-plot", show_label=False)
        views_plot = gr.Plot(elem_id="dn-views-plot", show_label=False)

    controls = [ctx.image, model, geometry, allow, compare, threshold, head, n_local, seed, pca_threshold, ctx.lang]
    parts = dict(head=head, banner=banner, info=info, steps=steps, heads_plot=heads_plot, overlay_plot=overlay_plot,
                 masks_plot=masks_plot, other_banner=other_banner, compare_plot=compare_plot,
                 features_info=features_info, features_plot=features_plot, crops_plot=crops_plot, views_plot=views_plot)
    outputs = list(parts.values())
    redraw, on_threshold, on_pca, on_head, on_compare, on_crops = (
        by_component(parts, step) for step in (refresh, change_threshold, change_pca_threshold, change_head,
                                               change_compare, change_crops))

    def analyse(*values, progress=None):
        return redraw(Controls(*values))

    def on_change(*values):
        return redraw(Controls(*values))

    for trigger in (model.change, geometry.input, allow.input):
        trigger(with_progress(analyse), controls, outputs, api_visibility="private")
    compare.change(with_progress(lambda *values, progress=None: on_compare(Controls(*values))), controls,
                   [other_banner, compare_plot, features_plot, features_info], api_visibility="private")
    threshold.input(lambda *values: on_threshold(Controls(*values)), controls, [info, masks_plot, compare_plot],
                    api_visibility="private", show_progress="hidden", trigger_mode="always_last")
    pca_threshold.input(lambda *values: on_pca(Controls(*values)), controls, [features_plot, features_info],
                        api_visibility="private", show_progress="hidden", trigger_mode="always_last")
    head.input(lambda *values: on_head(Controls(*values)), controls, [overlay_plot], api_visibility="private",
               show_progress="hidden")
    for control in (n_local, seed):
        control.input(lambda *values: on_crops(Controls(*values)), controls, [crops_plot, views_plot],
                      api_visibility="private", show_progress="hidden", trigger_mode="always_last")
    ctx.lenses.append(TabHooks("dino", tab, analyse, on_change, controls, outputs, outputs))


def api(image: FileData, model: str, geometry: str = "native", threshold: float = -1.0, arrays: str = "") -> dict:
    """The DINO lens on an uploaded image, as `python -m explorer export dino` writes it: the last
    block's CLS attention per head over the patches (``attention`` (heads, rows, cols)), at the
    image's aspect ratio by default; with ``threshold`` t in [0, 1] (−1: none) the official
    ``visualize_attention.py`` masks. Small arrays come by default; name others in ``arrays``."""
    from explorer.lenses.dino.compute import export_arrays

    entry = model_for_lens("dino", model)
    geometry = check_geometry(geometry)
    cut = None if threshold == -1 else check_threshold(threshold)
    loaded, a = lens_analysis("dino", open_uploaded_image(image), entry.key, geometry, False, analyze_image)
    return arrays_reply(loaded, export_arrays(a, cut), arrays)
