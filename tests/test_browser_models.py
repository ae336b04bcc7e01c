"""Any timm name typed into a tab's model box, in headless Chromium: the lens opens it (offline,
the family's bundled demo stands in and the banner says so), and a model no lens reads gets
one sentence that names what the lenses read."""

from __future__ import annotations

import pytest

from test_browser_teacher import chromium, expect, fresh_page  # noqa: F401  (chromium: the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def type_model(page, name: str) -> None:
    box = page.locator("#att-model input")
    box.click()
    box.fill(name)
    box.press("Enter")


def test_a_typed_timm_name_opens_in_the_attention_tab(chromium, app):
    page = fresh_page(chromium, app)
    try:
        expect(page.locator("#att-model .info-text")).to_contain_text("type any timm model name")
        type_model(page, "deit3_small_patch16_224")
        banner = page.locator("#att-banner")
        # offline: no weights for it here, so the bundled demo ViT stands in, and the banner says so first
        expect(banner).to_contain_text("instead of deit3_small_patch16_224.fb_in1k", timeout=60_000)
        expect(banner).to_contain_text("python -m explorer fetch deit3_small_patch16_224.fb_in1k")
        assert page.locator(".toast-body").count() == 0
        type_model(page, "resnet18")
        expect(page.locator(".toast-body").first).to_contain_text("No lens reads resnet18", timeout=30_000)
    finally:
        page.context.close()
