"""Figures of the MAE lab: the official 4-panel picture (original, masked, reconstruction,
reconstruction + visible), the per-patch reconstruction error over the image, and the
clickable mask picker on which a person paints the patches to hide."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw

from explorer.lenses.mae.compute import MAEResult
from explorer.lenses.plotting import PlainFigure, base_layout, image_data_uri, overlay_figure, picker_size
from explorer.ui.i18n import t

__all__ = ["PANELS", "panels_figure", "error_map", "error_figure", "mask_picker_image"]

PANELS = ("original", "masked", "reconstruction", "pasted")


def _panel_titles(r: MAEResult, leak: bool, lang: str) -> list[str]:
    recon_key = "mae_panel_recon_leak" if (leak and r.norm_pix_loss) else (
        "mae_panel_recon_normpix" if r.norm_pix_loss else "mae_panel_recon")
    return [t("mae_panel_original", lang), t("mae_panel_masked", lang, k=r.hidden_count, n=r.num_patches),
            t(recon_key, lang), t("mae_panel_pasted", lang)]


def error_map(r: MAEResult, leak: bool) -> tuple[np.ndarray, str]:
    """The per-patch error to show (NaN on visible patches) and its unit key: pixel MSE for
    plain-pixel models (and for norm-pix ones with the leaking statistics), otherwise the
    paper's loss in per-patch normalised units (the only honest error without the leak)."""
    hidden = r.mask.reshape(r.grid).astype(bool)
    if r.norm_pix_loss and not leak:
        values, unit = r.patch_loss, "mae_unit_normpix"
    else:
        values, unit = r.patch_mse, "mae_unit_pixels"
    return np.where(hidden, values, np.nan), unit


def panels_figure(r: MAEResult, leak: bool = False, lang: str = "en") -> go.Figure:
    """The four pictures side by side; hovering any of them names the patch, whether it was
    hidden and its reconstruction error."""
    pictures = r.leak_panels if (leak and r.norm_pix_loss) else r.panels
    errors, unit = error_map(r, leak)
    fig = PlainFigure(rows=1, cols=4, subplot_titles=_panel_titles(r, leak, lang), horizontal_spacing=0.03)
    h, w = pictures["original"].shape[:2]
    p = r.patch
    rows, cols = np.meshgrid(np.arange(r.grid[0]), np.arange(r.grid[1]), indexing="ij")
    state = np.where(r.mask.reshape(r.grid) > 0, t("mae_hidden", lang), t("mae_visible", lang))
    custom = np.stack([rows, cols, rows * r.grid[1] + cols, state], axis=-1)
    for i, name in enumerate(PANELS, start=1):
        fig.add_trace(dict(type="image", source=image_data_uri(pictures[name]), x0=0.5, y0=0.5, hoverinfo="skip"),
                      row=1, col=i)
        fig.add_trace(dict(
            type="heatmap", z=errors, x=(np.arange(r.grid[1]) + 0.5) * p, y=(np.arange(r.grid[0]) + 0.5) * p, customdata=custom,
            opacity=0.0, showscale=False, colorscale="Magma",
            hovertemplate=("patch (row %{customdata[0]}, col %{customdata[1]}) #%{customdata[2]}<br>"
                           "%{customdata[3]}<br>" + t(unit, lang) + " = %{z:.4f}<extra></extra>")),
            row=1, col=i)
        fig.update_xaxes(range=[0, w], showgrid=False, title_text=t("x_px", lang), row=1, col=i)
        fig.update_yaxes(range=[h, 0], showgrid=False, scaleanchor=fig.refs(1, i)["xref"],
                         showticklabels=i == 1, row=1, col=i)
    base_layout(fig, t("mae_panels_title", lang, ratio=r.actual_ratio, strategy=t(f"mae_strategy_{r.strategy}", lang)),
                t("x_px", lang), t("y_px", lang), height=390)
    for i in range(2, 5):
        fig.update_yaxes(title_text="", row=1, col=i)
    for i in range(2, 5):
        fig.update_xaxes(title_text=t("x_px", lang), row=1, col=i)
    return fig.figure()


def error_figure(r: MAEResult, leak: bool = False, lang: str = "en") -> go.Figure:
    """Per-patch reconstruction error of the hidden patches, over the model's input."""
    values, unit = error_map(r, leak)
    if not np.isfinite(values).any():
        values = np.zeros(r.grid)  # nothing hidden: an empty, still labelled map
    return overlay_figure(r.model_image, values, (r.patch, r.patch),
                          title=t("mae_error_title", lang, unit=t(unit, lang)), colorbar_title=t(unit, lang),
                          colorscale="Magma", value_name=t(unit, lang), opacity=0.75, zmin=0.0,
                          x_title=t("x_pixels", lang), y_title=t("y_pixels", lang))


def mask_picker_image(model_image: np.ndarray, grid: tuple[int, int], hidden: np.ndarray,
                      display_side: int = 448) -> Image.Image:
    """The model's input enlarged with its patch grid; hidden patches are greyed and crossed,
    so a click (``plotting.clicked_patch``) toggles what the person sees."""
    size = picker_size(model_image.shape[:2], display_side)
    picture = Image.fromarray(model_image).resize(size, Image.NEAREST).convert("RGBA")
    shade = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(shade)
    rows, cols = grid
    cell_w, cell_h = size[0] / cols, size[1] / rows
    for index in np.flatnonzero(np.asarray(hidden).reshape(-1)):
        r, c = divmod(int(index), cols)
        box = [c * cell_w, r * cell_h, (c + 1) * cell_w - 1, (r + 1) * cell_h - 1]
        # grey as in the masked panel, with a red edge and cross that show on dark and light images
        draw.rectangle(box, fill=(128, 128, 128, 215), outline=(255, 45, 85, 255), width=2)
        draw.line([box[0], box[1], box[2], box[3]], fill=(255, 45, 85, 200), width=2)
        draw.line([box[0], box[3], box[2], box[1]], fill=(255, 45, 85, 200), width=2)
    for r in range(1, rows):
        draw.line([(0, r * cell_h), (size[0], r * cell_h)], fill=(255, 255, 255, 110), width=1)
    for c in range(1, cols):
        draw.line([(c * cell_w, 0), (c * cell_w, size[1])], fill=(255, 255, 255, 110), width=1)
    return Image.alpha_composite(picture, shade).convert("RGB")
