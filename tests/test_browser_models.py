"""Any timm name typed into a tab's model box, in headless Chromium: the lens opens it (offline,
the family's bundled demo stands in and the banner says so), and a model no lens reads gets
one sentence that names what the lenses read."""

from __future__ import annotations

import re

import pytest

from test_browser_teacher import SCREENSHOTS, chromium, expect, fresh_page  # noqa: F401  (chromium: the fixture)

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
        expect(banner).to_contain_text("Device: cpu")  # where it runs (EXPLORER_DEVICE)
        assert page.locator(".toast-body").count() == 0
        type_model(page, "resnet18")
        expect(page.locator(".toast-body").first).to_contain_text("No lens reads resnet18", timeout=30_000)
    finally:
        page.context.close()


def test_an_uploaded_checkpoint_with_its_labels_predicts_with_them_in_its_session_only(chromium, app, tmp_path):
    """The coursework's wish: a fine-tuned 10-class model and its class names, uploaded in the page."""
    import torch
    from safetensors.torch import save_file

    from explorer.core.weights import build_model
    from explorer.core.zoo import get_entry

    model = build_model(get_entry("demo_vit"), num_classes=10)
    with torch.no_grad():
        model.head.bias.copy_(torch.arange(10.0))  # "truck" wins whatever the picture
    weights = tmp_path / "my_cifar_vit.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    labels = tmp_path / "labels.txt"
    labels.write_text("airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n", encoding="utf-8")
    page = fresh_page(chromium, app)
    other = fresh_page(chromium, app)
    try:
        page.locator("#own-model").get_by_text("Your own model").click()
        page.set_input_files("#own-checkpoint input[type=file]", str(weights))
        expect(page.locator("#own-status")).to_contain_text("Opened my_cifar_vit.safetensors", timeout=60_000)
        expect(page.locator("#att-model input")).to_have_value("my_cifar_vit.safetensors (uploaded)")
        expect(page.locator("#att-banner")).to_contain_text("10 classes (no names", timeout=30_000)
        page.set_input_files("#own-labels input[type=file]", str(labels))
        expect(page.locator("#att-predictions")).to_contain_text("truck", timeout=60_000)
        expect(page.locator("#att-banner")).to_contain_text("10 classes (names from labels.txt)")
        expect(page.locator("#own-status")).to_contain_text("Attention, Explain, DINO")
        assert page.locator(".toast-body").count() == 0
        # before vs after fine-tuning: the demo ViT beside the uploaded one (listed as a second model too)
        page.locator("#att-compare-panel").get_by_text("Compare with a second model").click()
        page.locator("#att-compare input[role=combobox]").click()
        expect(page.locator("[role=listbox]")).to_contain_text("my_cifar_vit.safetensors (uploaded)")
        page.get_by_role("option", name=re.compile("^Demo ViT")).first.click()
        expect(page.locator("#att-compare-query-plot .gtitle")).to_contain_text("demo_vit", timeout=30_000)
        expect(page.locator("#att-model input")).to_have_value("my_cifar_vit.safetensors (uploaded)")
        # the other language keeps the choice, says the same in Chinese
        page.locator("#language").get_by_text("简体中文", exact=True).click()
        expect(page.locator("#own-status")).to_contain_text("已打开", timeout=30_000)
        expect(page.locator("#att-model input")).to_have_value("my_cifar_vit.safetensors（已上传）")
        expect(page.locator("#att-banner")).to_contain_text("类别名来自 labels.txt")
        # another session never sees it
        other.locator("#att-model input").click()
        options = other.locator("[role=listbox] [role=option]")
        expect(options.first).to_be_visible()
        assert options.count() > 1 and "uploaded" not in other.locator("[role=listbox]").inner_text()
        page.locator("#att-model input").click()  # while its own session lists it
        expect(page.locator("[role=listbox]")).to_contain_text("my_cifar_vit.safetensors（已上传）")
    finally:
        page.context.close()
        other.context.close()


def test_explain_pick_a_class_see_the_maps_and_measure_them(chromium, app):
    page = fresh_page(chromium, app)
    try:
        page.get_by_role("tab", name="Explain", exact=True).click()
        maps = page.locator("#ex-maps-plot .js-plotly-plot .gtitle")
        expect(maps).to_contain_text("Relevance for", timeout=60_000)
        panels = page.locator("#ex-maps-plot .annotation-text")  # the subplot titles, one per method
        expect(panels).to_have_text(["attention", "rollout", "GAE", "Grad-CAM", "AttnLRP", "random"])
        box = page.locator("#ex-target input")
        box.click()
        box.fill("square")
        box.press("Enter")
        expect(page.locator("#ex-target-line")).to_contain_text("square (class 1", timeout=60_000)
        expect(maps).to_contain_text("“square”")
        page.locator("#ex-measure").click()
        expect(page.locator("#ex-curves-plot .js-plotly-plot .gtitle")).to_contain_text(
            "Deletion and insertion for “square”", timeout=60_000)
        expect(page.locator("#ex-verdict")).to_contain_text("deletes fastest")
        assert page.locator(".toast-body").count() == 0
        # a second model beside it: the demo Swin's maps for the same class
        page.locator("#ex-compare-panel").get_by_text("Compare with a second model").click()
        page.locator("#ex-compare input[role=combobox]").click()
        page.get_by_role("option", name=re.compile("Swin")).first.click()
        second = page.locator("#ex-compare-maps-plot .js-plotly-plot .gtitle")
        expect(second).to_contain_text("demo_swin · Relevance for “square”", timeout=60_000)
        expect(page.locator("#ex-compare-line")).to_contain_text("(class 1; the same class as the first model's)")
        expect(page.locator("#ex-compare-maps-plot .annotation-text")).to_have_text(["Grad-CAM", "random"])
        page.locator("#ex-compare-panel").scroll_into_view_if_needed()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "explain_compare_en.png"))
    finally:
        page.context.close()


def test_explain_reads_an_uploaded_timm_vit_with_every_method(chromium, app, tmp_path):
    """A timm ViT-Ti (random weights, 10 classes) opened from its file: the Explain tab draws all
    six maps for it, AttnLRP included, and measures them."""
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", num_classes=10)
    weights = tmp_path / "my_vit_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights)
    page = fresh_page(chromium, app)
    try:
        page.get_by_role("tab", name="Explain", exact=True).click()
        page.locator("#own-model").get_by_text("Your own model").click()
        arch = page.locator("#own-arch input")  # not among the listed models: its name is given
        arch.click()
        arch.fill("vit_tiny_patch16_224")
        arch.press("Enter")
        page.set_input_files("#own-checkpoint input[type=file]", str(weights))
        expect(page.locator("#own-status")).to_contain_text("vit_tiny_patch16_224", timeout=60_000)
        expect(page.locator("#ex-model input")).to_have_value("my_vit_tiny.safetensors (uploaded)", timeout=30_000)
        expect(page.locator("#ex-banner")).to_contain_text("10 classes", timeout=60_000)
        panels = page.locator("#ex-maps-plot .annotation-text")
        expect(panels).to_have_text(["attention", "rollout", "GAE", "Grad-CAM", "AttnLRP", "random"], timeout=60_000)
        page.locator("#ex-measure").click()
        expect(page.locator("#ex-verdict")).to_contain_text("deletes fastest", timeout=90_000)
        assert page.locator(".toast-body").count() == 0
    finally:
        page.context.close()
