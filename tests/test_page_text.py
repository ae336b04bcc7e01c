"""What the page says in words: no emoji carries meaning (they show as empty boxes without an
emoji font), a demo model says next to its predictions what its labels are, and an offline
banner leads with what is shown, then the one file to fetch, then the details; every lens has its
three sentences for a student and the suggested lesson walks the tabs in the course's order."""

from __future__ import annotations

import re
from dataclasses import replace

from explorer.core.weights import get_model, load_model
from explorer.core.zoo import get_entry
from explorer.lenses.registry import LENSES
from explorer.ui.i18n import STRINGS
from explorer.ui.lesson import STEPS
from explorer.ui.widgets import banner_markdown, demo_note

# pictographs, dingbats (✅ ❌ ⚠ ℹ …) and the emoji variation selector
EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B50\u2139\uFE0F]")
HUB_KEY = "vit_base_patch16_224.augreg_in21k_ft_in1k"


def test_no_emoji_in_any_text():
    for key, pair in STRINGS.items():
        for text in pair:
            assert not EMOJI.search(text), (key, text)


def test_demo_model_says_next_to_its_predictions_that_it_knows_only_shapes():
    loaded = get_model("demo_vit", allow_download=False)
    en, zh = demo_note(loaded, "en"), demo_note(loaded, "zh")
    assert "only the 8 synthetic shapes" in en and "circle" in en and "fetch --recommended" in en
    assert "8 种合成形状" in zh and "圆形" in zh and "fetch --recommended" in zh
    assert not EMOJI.search(banner_markdown(loaded, "en") + banner_markdown(loaded, "zh"))
    hub = replace(loaded, shown=get_entry(HUB_KEY))  # real weights shown: nothing to say
    assert demo_note(hub, "en") == "" and demo_note(hub, "zh") == ""


def test_offline_banner_leads_with_what_is_shown_then_the_file_then_why(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def unreachable(entry, allow_download):
        from huggingface_hub.errors import LocalEntryNotFoundError

        raise LocalEntryNotFoundError("no connection")

    monkeypatch.setattr("explorer.core.weights.hub_file", unreachable)
    loaded = load_model(get_entry(HUB_KEY), allow_download=True)
    en, zh = loaded.banner.en, loaded.banner.zh
    assert en.startswith("Showing the bundled Demo ViT") and zh.startswith("现在显示的是内置的")
    shown, fetch, why = en.index("Showing"), en.index("Download https://"), en.index("the hub could not be reached")
    assert shown < fetch < why and en.rstrip().endswith("(LocalEntryNotFoundError).")
    assert zh.index("请下载") < zh.index("无法连接到 Hub")


def test_every_lens_has_three_sentences_for_a_student_in_both_languages():
    guides = {key: pair for key, pair in STRINGS.items() if key.endswith("_guide")}
    assert len(guides) == len(LENSES)  # one per tab (model_controls shows it under the banner)
    for key, (en, zh) in guides.items():
        assert re.findall(r"\*\*(.+?)\*\*", en) == ["What you see:", "The colour bar:", "Try this:"], key
        assert re.findall(r"\*\*(.+?)\*\*", zh) == ["你看到的：", "怎么读色标：", "试一试："], key


def test_the_suggested_lesson_walks_vit_swin_bias_crossformer_mae_dino():
    assert [tab for tab, _ in STEPS] == ["attention", "swin", "bias", "crossformer", "mae", "dino"]
    for number, (_, key) in enumerate(STEPS, start=1):
        en, zh = STRINGS[key]
        assert en.startswith(f"**{number} · ") and zh.startswith(f"**{number} · ")
        assert "*Ask:*" in en and "*提问：*" in zh
