"""The NaViT tab: several images of different sizes and aspect ratios, cut into patches at
their own aspect ratio, thinned by token dropout, packed into sequences, kept apart by a
block-diagonal mask, and classified in one packed pass — checked against each image alone.
The sequence picker only redraws; images, resolution, dropout and seed run the model (a
bundled NaViT takes milliseconds)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData

from explorer.core import arguments
from explorer.core.errors import UserFacingError
from explorer.core.images import LoadedImage, load_image
from explorer.core.results import RESULTS
from explorer.core.weights import LoadedModel
from explorer.core.zoo import REPO_ROOT
from explorer.lenses.registry import entries_for_lens
from explorer.lenses.navit import figures
from explorer.lenses.navit.compute import MAX_IMAGES, NaViTAnalysis, analyze_images
from explorer.ui.i18n import class_label, t
from explorer.lenses.registry import lens_model, model_for_lens
from explorer.ui.api import arrays_reply
from explorer.ui.uploads import open_uploaded_image, path_of
from explorer.ui.widgets import TabHooks, PageContext, by_component, banner_markdown, model_controls, user_errors

EXAMPLE_DIR = REPO_ROOT / "assets" / "navit"
EQUAL_TOLERANCE = 1e-5


def example_names() -> list[str]:
    return sorted(p.name for p in EXAMPLE_DIR.glob("*.png")) if EXAMPLE_DIR.is_dir() else []


@dataclass
class Controls:
    page_image: LoadedImage | None
    model_key: str
    allow_download: bool
    include_page_image: bool
    examples: list[str]
    uploads: list[str] | None
    tokens: int
    token_dropout: float
    seed: int
    sequence: int | None
    lang: str

    def pictures(self) -> list[tuple[str, LoadedImage]]:
        names = [name for name in self.examples or [] if name in example_names()]  # bundled files, by name
        uploads = list(self.uploads or [])
        count = (self.include_page_image and self.page_image is not None) + len(names) + len(uploads)
        if not count:
            raise UserFacingError(t("nv_need_images", "en"), t("nv_need_images", "zh"))
        if count > MAX_IMAGES:  # before anything is decoded
            raise UserFacingError(t("nv_too_many", "en", n=MAX_IMAGES), t("nv_too_many", "zh", n=MAX_IMAGES))
        chosen: list[tuple[str, LoadedImage]] = []
        if self.include_page_image and self.page_image is not None:
            # one name in both languages: a language switch must find the cached result
            chosen.append((f"{t('nv_page_image', 'en')} / {t('nv_page_image', 'zh')}", self.page_image))
        chosen += [(Path(name).stem, load_image(EXAMPLE_DIR / name)) for name in names]
        chosen += [(Path(path_of(path)).name, open_uploaded_image(path)) for path in uploads]
        return chosen

    def analysis(self) -> tuple[LoadedModel, NaViTAnalysis]:
        tokens = arguments.whole_number(self.tokens, 4, 1024, (t("nv_tokens", "en"), t("nv_tokens", "zh")))
        drop = arguments.fraction(self.token_dropout, 0.0, 0.95, (t("nv_dropout", "en"), t("nv_dropout", "zh")))
        seed = arguments.seed(0 if self.seed is None else self.seed)
        pictures = self.pictures()
        loaded = lens_model("navit", self.model_key, self.allow_download)
        key = ("navit", loaded.shown.key, loaded.weights_id, tuple(im.digest for _, im in pictures),
               tuple(name for name, _ in pictures), tokens, drop, seed)
        result = RESULTS.get_or_create(key, lambda: analyze_images(
            loaded, pictures, tokens=tokens, token_dropout=drop, seed=seed))
        return loaded, result


def equivalence_markdown(a: NaViTAnalysis, lang: str) -> str:
    ok = a.max_abs_diff <= EQUAL_TOLERANCE
    head = t("nv_equal_ok" if ok else "nv_equal_bad", lang, d=a.max_abs_diff, tol=EQUAL_TOLERANCE)
    return "\n\n".join([head, t("nv_summary", lang, n=len(a.images), s=a.num_sequences, L=a.max_seq_len,
                                util=a.utilisation, drop=a.token_dropout)])


def predictions_markdown(a: NaViTAnalysis, lang: str) -> str:
    rows = [t("nv_table_columns", lang), "|---|---|---|---|---|---|---|"]
    for i, im in enumerate(a.images):
        top = im.predictions[0] if im.predictions else None
        guess = f"**{class_label(top.label, lang)}** {top.probability:.1%}" if top else "—"
        w, h = im.source_size
        rows.append(f"| {i} · {im.name} | {w}×{h} → {im.pixels.shape[1]}×{im.pixels.shape[0]} | "
                    f"{im.grid[0]}×{im.grid[1]} | {len(im.kept)}/{im.tokens} | {im.sequence} · {im.slot} | "
                    f"{guess} | {im.max_abs_diff:.1e} |")
    return "\n".join(rows)


def render(loaded: LoadedModel, a: NaViTAnalysis, sequence: int | None, lang: str) -> dict:
    """Every output of the tab by name."""
    sequence = min(max(int(sequence or 0), 0), a.num_sequences - 1)
    choices = [(t("nv_sequence_n", lang, s=s), s) for s in range(a.num_sequences)]
    return {
        "banner": banner_markdown(loaded, lang),
        "equivalence": equivalence_markdown(a, lang),
        "table": predictions_markdown(a, lang),
        "patches_plot": figures.patches_figure(a, lang),
        "packing_plot": figures.packing_figure(a, lang),
        "sequence": gr.update(choices=choices, value=sequence),
        "mask_plot": figures.mask_figure(a, sequence, lang),
    }


@user_errors
def refresh(c: Controls) -> dict:
    loaded, result = c.analysis()
    return render(loaded, result, c.sequence, c.lang)


def build(ctx: PageContext) -> None:
    entries = entries_for_lens("navit")
    if not entries:
        return
    tr = ctx.translations
    names = example_names()
    with gr.Tab(t("tab_navit", "en"), id="navit") as tab:
        tr.add(tab, "tab_navit")
        model, _geometry, allow, banner = model_controls(tr, entries, entries[0].key, "nv", geometries=("native",))
        tr.add(gr.Markdown(t("nv_help", "en")), "nv_help", "value")
        with gr.Row():
            with gr.Column(scale=2):
                examples = tr.add(gr.CheckboxGroup(names, value=names, label=t("nv_examples", "en"),
                                                   elem_id="nv-examples"), "nv_examples")
                include = tr.add(gr.Checkbox(value=True, label=t("nv_include_page", "en"),
                                             elem_id="nv-include"), "nv_include_page")
                uploads = tr.add(gr.File(file_count="multiple", file_types=["image"], type="filepath",
                                         label=t("nv_uploads", "en"), height=120, elem_id="nv-uploads"),
                                 "nv_uploads")
            with gr.Column(scale=2):
                tokens = tr.add(gr.Slider(16, 160, value=64, step=8, label=t("nv_tokens", "en"),
                                          elem_id="nv-tokens"), "nv_tokens")
                dropout = tr.add(gr.Slider(0.0, 0.9, value=0.0, step=0.05, label=t("nv_dropout", "en"),
                                           elem_id="nv-dropout"), "nv_dropout")
                seed = tr.add(gr.Number(value=0, precision=0, label=t("nv_seed", "en"), elem_id="nv-seed"),
                              "nv_seed")
            with gr.Column(scale=3):
                equivalence = gr.Markdown(elem_id="nv-equivalence")
        table = gr.Markdown(elem_id="nv-table")
        patches_plot = gr.Plot(elem_id="nv-patches-plot", show_label=False)
        packing_plot = gr.Plot(elem_id="nv-packing-plot", show_label=False)
        sequence = tr.add(gr.Dropdown([], label=t("nv_sequence", "en"), elem_id="nv-sequence"), "nv_sequence")
        mask_plot = gr.Plot(elem_id="nv-mask-plot", show_label=False)
        tr.add(gr.Markdown(t("nv_caption", "en"), elem_classes="caption"), "nv_caption", "value")

    controls = [ctx.image, model, allow, include, examples, uploads, tokens, dropout, seed, sequence, ctx.lang]
    parts = dict(banner=banner, equivalence=equivalence, table=table, patches_plot=patches_plot,
                 packing_plot=packing_plot, sequence=sequence, mask_plot=mask_plot)
    outputs = list(parts.values())
    redraw = by_component(parts, refresh)

    def analyse(*values, progress=None):
        return redraw(Controls(*values))

    def on_change(*values):
        return redraw(Controls(*values))

    for trigger in (model.change, allow.input, include.input, examples.input, uploads.upload,
                    uploads.clear, tokens.input, dropout.input, seed.input):
        trigger(on_change, controls, outputs, api_visibility="private")
    sequence.input(on_change, controls, outputs, api_visibility="private", show_progress="hidden")
    ctx.lenses.append(TabHooks("navit", tab, analyse, on_change, controls, outputs, outputs))


def api(images: list[FileData], model: str, tokens: int = 64, token_dropout: float = 0.0, seed: int = 0,
        arrays: str = "") -> dict:
    """The NaViT lens on several uploaded images, as `python -m explorer export navit` writes it:
    the packing (``image_ids``, ``token_image``, ``positions``, the boolean attention ``mask`` per
    sequence), each image's grid and kept tokens, and the logits packed and alone. Small arrays
    come by default; name others in ``arrays``."""
    from explorer.lenses.navit.compute import export_arrays

    entry = model_for_lens("navit", model)
    if not isinstance(images, list) or not images:
        raise arguments.ArgumentError(t("nv_need_images", "en"), t("nv_need_images", "zh"))
    controls = Controls(None, entry.key, False, False, [], list(images), tokens, token_dropout,
                        seed, None, "en")
    loaded, a = controls.analysis()
    return arrays_reply(loaded, export_arrays(a), arrays, max_abs_diff=float(a.max_abs_diff),
                        sequences=int(a.num_sequences))
