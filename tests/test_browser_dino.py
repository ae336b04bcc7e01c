"""The DINO tab in headless Chromium, offline, used as a person would: on the page's synthetic
example and the bundled demo DINO, the head gallery, the threshold masks, the side-by-side and
the multi-crop views are drawn with titles, axis names and colour bars; moving the threshold
slider redraws the masks and runs no model; the language switch relabels without running one;
nothing leaves 127.0.0.1. Reuses test_browser.py's browser fixture and helpers; saves
artifacts/screenshots/dino.png."""

from __future__ import annotations

import re

import pytest

from forward_counter import forward_count
from test_browser import (FIRST_PLOT_TIMEOUT, Browser, browser, close_toasts, expect,  # noqa: F401 (fixture)
                          expect_update, open_tab, save_screenshot)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TAB = "DINO"  # tab labels are kept short so that all eight tabs fit in one row (changed by the lead)
PLOTS = ("#dn-heads-plot", "#dn-overlay-plot", "#dn-masks-plot", "#dn-compare-plot", "#dn-features-plot",
         "#dn-crops-plot", "#dn-views-plot")
SCALED = ("#dn-heads-plot", "#dn-overlay-plot", "#dn-masks-plot", "#dn-compare-plot", "#dn-features-plot")  # with a colour bar


def set_threshold(b: Browser, value: float, slider: str = "#dn-threshold") -> None:
    """Type into the number box of a threshold slider and press Enter."""
    number = b.page.locator(f"{slider} input[type=number]")
    number.fill(f"{value:g}")
    number.press("Enter")


def panel_titles(b: Browser, plot: str) -> list[str]:
    """The subplot titles (SVG annotations) of a plot."""
    return b.page.locator(f"{plot} .annotation-text").all_text_contents()


def heatmap_pixels(b: Browser, plot: str) -> list[str]:
    """The rasterised heatmaps of a plot (plotly draws each as an SVG <image>)."""
    return [image.get_attribute("href") or "" for image in b.page.locator(f"{plot} .hm image").all()]


def test_dino_tab_masks_follow_the_threshold_without_running_a_model(browser):
    b, page = browser, browser.page
    before = open_tab(b, TAB, "#dn-heads-plot")
    expect(page.locator("#dn-model input[role=combobox]")).to_have_value(re.compile("^Demo DINO"))
    expect(page.locator("#dn-compare input[role=combobox]")).to_have_value(re.compile("^Demo ViT"))
    for plot in PLOTS:
        page.wait_for_selector(f"{plot} .js-plotly-plot svg.main-svg", timeout=FIRST_PLOT_TIMEOUT)
        expect(b.title(plot)).not_to_be_empty()
        # axis titles are text.xtitle, text.x2title, ... (a grid names only its outer axes)
        expect(page.locator(f'{plot} text[class^="x"][class$="title"]').first).not_to_be_empty()
        expect(page.locator(f'{plot} text[class^="y"][class$="title"]').first).not_to_be_empty()
    for plot in SCALED:
        expect(page.locator(f"{plot} .colorbar .cbtitle").first).not_to_be_empty()
    expect(b.title("#dn-heads-plot")).to_contain_text("(the last) · CLS attention over")
    expect(b.title("#dn-masks-plot")).to_contain_text("Threshold t = 0.60")
    expect(b.title("#dn-compare-plot")).to_contain_text("Same image, two models")
    expect(b.title("#dn-crops-plot")).to_contain_text("2 global + 8 local")
    expect(page.locator("#dn-info")).to_contain_text("4 heads")
    heads = panel_titles(b, "#dn-heads-plot")
    assert [title.split(" ·")[0] for title in heads] == ["head 0", "head 1", "head 2", "head 3"], heads
    assert forward_count() == before + 2, "opening the tab should run the DINO model and the compared one once"

    # hover names the patch (row, col) and its value: 8x8 patches, aim at row 5, col 2 of a panel
    for plot, subplot, text in (("#dn-heads-plot", "xy", "head 0 · patch (row 5, col 2)"),
                                ("#dn-masks-plot", "x2y2", "head 0 · patch (row 5, col 2)")):
        panel = page.locator(f'{plot} .nsewdrag[data-subplot="{subplot}"]')
        panel.scroll_into_view_if_needed()
        box = panel.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)
        expect(page.locator(f"{plot} .hoverlayer")).to_contain_text(text)
    expect(page.locator("#dn-masks-plot .hoverlayer")).to_contain_text(re.compile("in the mask|outside the mask"))
    page.mouse.move(0, 0)

    masks_before = panel_titles(b, "#dn-masks-plot")
    pixels_before = heatmap_pixels(b, "#dn-masks-plot")
    # 4 heads overlaid, then per head its mask and an invisible layer that makes the rest hover
    assert masks_before[0].startswith("all 4 heads") and len(pixels_before) == 4 + 4 * 2
    set_threshold(b, 0.3)
    expect_update(b, b.title("#dn-masks-plot"), "Threshold t = 0.30")
    expect(b.title("#dn-compare-plot")).to_contain_text("t = 0.30")
    expect(page.locator("#dn-info")).to_contain_text("t = 0.30")
    assert panel_titles(b, "#dn-masks-plot") != masks_before  # fewer patches hold 30% than 60%
    assert heatmap_pixels(b, "#dn-masks-plot") != pixels_before
    assert forward_count() == before + 2, "moving the threshold re-ran a model"
    # the tokens themselves: DINOv2's PCA and the token norms; its threshold redraws them alone
    expect(b.title("#dn-features-plot")).to_contain_text("DINOv2 PCA (foreground: first component > 0.50)")
    expect(page.locator("#dn-features-info")).to_contain_text("have a norm above 2× the median")
    set_threshold(b, 0.7, "#dn-pca-threshold")
    expect_update(b, b.title("#dn-features-plot"), "first component > 0.70")
    assert forward_count() == before + 2, "moving the PCA threshold re-ran a model"
    save_screenshot(b, "dino.png")

    page.locator("#language").get_by_text("简体中文", exact=True).click()
    expect_update(b, b.title("#dn-masks-plot"), "阈值 t = 0.30")
    expect(b.title("#dn-heads-plot")).to_contain_text("最后一块")
    expect(page.locator("#dn-threshold [data-testid=block-info]")).to_contain_text("阈值")
    assert forward_count() == before + 2, "switching the language re-ran a model"
    page.locator("#language").get_by_text("English", exact=True).click()
    expect_update(b, b.title("#dn-masks-plot"), "Threshold t = 0.30")
    close_toasts(b)

    assert b.blocked == [], f"the page tried to reach other hosts: {b.blocked}"
    assert b.errors == [], f"console/page errors: {b.errors}"
