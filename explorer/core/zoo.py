"""The model registry: one entry per model a person can pick, for the UI and the CLI alike.

Hub models are timm architectures plus a pretrained tag; bundled demo models are described
by the JSON model cards next to their weights in ``checkpoints/`` (written by
``explorer.train``), so a newly trained demo model appears without touching this file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from explorer.core.text import pick

log = logging.getLogger("explorer.zoo")

REPO_ROOT = Path(__file__).resolve().parents[2]
# EXPLORER_CHECKPOINTS points a deployment (or a test) at another folder of weights and cards.
CHECKPOINT_DIR = Path(os.environ.get("EXPLORER_CHECKPOINTS") or REPO_ROOT / "checkpoints")


@dataclass(frozen=True)
class ModelEntry:
    """Everything the app needs to know to build, load and describe one selectable model."""

    key: str  # unique id used by the UI, the CLI and checkpoint file names
    label_en: str
    label_zh: str
    # What kind of model it is, as the demo model cards say it: "vit" (ViT, DeiT), "dino", "swin",
    # "twins", "crossformer", "navit", "mae"; the bundled demo of that family replaces it offline.
    # Which lenses read it is asked of its modules (lenses/registry), not of this name.
    family: str
    timm_model: str  # timm architecture name (with the pretrained tag for hub models)
    pretrained_tag: str | None = None  # None for bundled demo models
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    class_names: tuple[str, ...] | None = None  # None: ImageNet-1k names from timm
    card_path: Path | None = None  # bundled demo model card
    card: Mapping[str, Any] | None = None
    note_en: str = ""
    note_zh: str = ""
    # Weights that are not on the hub: where a person gets them, and the file names they
    # come with (accepted in checkpoints/ besides <key>.safetensors/.pth).
    manual_source: str | None = None
    release_filenames: tuple[str, ...] = ()


    @property
    def is_demo(self) -> bool:
        return self.card is not None

    @property
    def hf_hub_id(self) -> str | None:
        return f"timm/{self.timm_model}" if self.pretrained_tag else None

    @property
    def local_weight_stem(self) -> str:
        """``checkpoints/<stem>.safetensors`` (or .pth/.bin) is looked for first."""
        return self.key

    def label(self, lang: str = "en") -> str:
        return pick((self.label_en, self.label_zh), lang)


def _hub(key: str, en: str, zh: str, note_en: str = "", note_zh: str = "", family: str = "vit",
         **kwargs) -> ModelEntry:
    tag = key.split(".", 1)[1]
    return ModelEntry(
        key=key, label_en=en, label_zh=zh, family="dino" if "dino" in tag else family, timm_model=key,
        pretrained_tag=tag, model_kwargs=MappingProxyType(kwargs), note_en=note_en, note_zh=note_zh,
    )


# Built to accept any input size: ViTs resample their position embedding; Swin pads each
# stage's map to whole windows (and timm rebuilds the mask for the padded size).
_ANY_SIZE = {"vit": {"dynamic_img_size": True}, "dino": {"dynamic_img_size": True}, "swin": {"strict_img_size": False}}
_DYN = _ANY_SIZE["vit"]

HUB_ENTRIES: tuple[ModelEntry, ...] = (
    _hub("vit_small_patch16_224.augreg_in21k_ft_in1k", "ViT-S/16 (AugReg, IN-21k → IN-1k)",
         "ViT-S/16（AugReg，IN-21k → IN-1k）", **_DYN),
    _hub("vit_base_patch16_224.augreg_in21k_ft_in1k", "ViT-B/16 (AugReg, IN-21k → IN-1k)",
         "ViT-B/16（AugReg，IN-21k → IN-1k）", **_DYN),
    _hub("deit_small_patch16_224.fb_in1k", "DeiT-S/16 (IN-1k)", "DeiT-S/16（IN-1k）", **_DYN),
    _hub("deit_small_distilled_patch16_224.fb_in1k", "DeiT-S/16 distilled (CLS + distillation token)",
         "DeiT-S/16 蒸馏版（CLS + 蒸馏 token）", **_DYN),
    _hub("vit_small_patch16_224.dino", "DINO ViT-S/16 (self-supervised, no classifier)",
         "DINO ViT-S/16（自监督，无分类头）", **_DYN),
    _hub("vit_small_patch8_224.dino", "DINO ViT-S/8 (self-supervised, no classifier)",
         "DINO ViT-S/8（自监督，无分类头）", **_DYN),
    _hub("vit_small_patch14_dinov2.lvd142m", "DINOv2 ViT-S/14, no registers (at 224 px)",
         "DINOv2 ViT-S/14，无 register token（224 像素）", img_size=224, **_DYN),
    _hub("vit_small_patch14_reg4_dinov2.lvd142m", "DINOv2 ViT-S/14 + 4 registers (at 224 px)",
         "DINOv2 ViT-S/14 + 4 个 register token（224 像素）",
         note_en="Register tokens are extra prefix tokens; attention maps skip them.",
         note_zh="register token 是额外的前缀 token；注意力图不显示它们。",
         img_size=224, **_DYN),
    _hub("vit_base_patch16_224.mae", "MAE ViT-B/16 encoder (self-supervised, no decoder, no classifier)",
         "MAE ViT-B/16 编码器（自监督，无解码器，无分类头）",
         note_en="The encoder alone: attention views only. Reconstructions need a checkpoint with the "
                 "decoder (MAE lab).",
         note_zh="只有编码器：只能看注意力。重建需要带解码器的检查点（MAE 实验室）。", **_DYN),
    _hub("swin_tiny_patch4_window7_224.ms_in1k", "Swin-T (window 7, IN-1k)", "Swin-T（窗口 7，IN-1k）",
         family="swin", **_ANY_SIZE["swin"]),
    _hub("twins_svt_small.in1k", "Twins-SVT-S (LSA + GSA, IN-1k)", "Twins-SVT-S（LSA + GSA，IN-1k）",
         family="twins"),
    _hub("twins_pcpvt_small.in1k", "Twins-PCPVT-S (GSA only, IN-1k)", "Twins-PCPVT-S（仅 GSA，IN-1k）",
         family="twins"),
)


def _official_crossformer(size: str, letter: str) -> ModelEntry:
    return ModelEntry(
        key=f"crossformer_{size}", label_en=f"CrossFormer-{letter} (official weights, IN-1k)",
        label_zh=f"CrossFormer-{letter}（官方权重，IN-1k）", family="crossformer",
        timm_model=f"crossformer_{size}",
        manual_source="https://github.com/cheerss/CrossFormer (Google Drive / Baidu links in its README)",
        release_filenames=(f"crossformer-{letter.lower()}.pth",),
    )


def _official_mae(size: str, letter: str, arch: str) -> ModelEntry:
    return ModelEntry(
        key=f"mae_visualize_vit_{size}", label_en=f"MAE ViT-{letter} with decoder (official visualize checkpoint)",
        label_zh=f"MAE ViT-{letter}（含解码器，官方可视化检查点）", family="mae", timm_model=arch,
        manual_source=f"https://dl.fbaipublicfiles.com/mae/visualize/mae_visualize_vit_{size}.pth",
        release_filenames=(f"mae_visualize_vit_{size}.pth",),
    )


# Official CrossFormer weights are only on Google Drive/Baidu, MAE decoders only on
# dl.fbaipublicfiles.com: never downloaded automatically.
MANUAL_ENTRIES: tuple[ModelEntry, ...] = (
    _official_crossformer("tiny", "T"),
    _official_crossformer("small", "S"),
    _official_mae("base", "B/16", "mae_vit_base_patch16"),
    _official_mae("large", "L/16", "mae_vit_large_patch16"),
    _official_mae("huge", "H/14", "mae_vit_huge_patch14"),
)


def _demo_entry(card_path: Path) -> ModelEntry:
    card = json.loads(card_path.read_text(encoding="utf-8"))
    kwargs = dict(card.get("model_kwargs", {}))
    family = card["family"]
    for name, value in _ANY_SIZE.get(family, {}).items():
        kwargs.setdefault(name, value)
    return ModelEntry(
        key=card_path.stem,
        label_en=card["name"],
        label_zh=card.get("name_zh", card["name"]),
        family=family,
        timm_model=card["timm_model"],
        model_kwargs=MappingProxyType({"num_classes": int(card["num_classes"]), **kwargs}),
        class_names=tuple(card["class_names"]) if card.get("num_classes") else None,
        card_path=card_path,
        card=MappingProxyType(card),
    )


# card path -> (its size and mtime, the entry read from it): each card is parsed once, and again
# only when the file changes, so page actions neither re-read nor depend on a card being rewritten
_CARDS: dict[Path, tuple[tuple[int, int], ModelEntry]] = {}


def _cached_demo_entry(card_path: Path) -> ModelEntry:
    return _cached_card(card_path, _demo_entry)


def _cached_card(card_path: Path, read) -> ModelEntry:
    info = card_path.stat()
    stamp = (info.st_size, info.st_mtime_ns)
    cached = _CARDS.get(card_path)
    if cached is None or cached[0] != stamp:
        try:
            cached = (stamp, read(card_path))
        except (OSError, ValueError, KeyError, TypeError):
            if cached is None:
                raise
            return cached[1]  # being rewritten: keep the last good reading, try again next time
        _CARDS[card_path] = cached
    return cached[1]


def demo_entries(checkpoint_dir: Path = CHECKPOINT_DIR) -> tuple[ModelEntry, ...]:
    """Bundled demo models: every ``demo_*.json`` card whose weights file is present."""
    entries = []
    for card_path in sorted(checkpoint_dir.glob("demo_*.json")):
        try:
            entry = _cached_demo_entry(card_path)
            present = (checkpoint_dir / entry.card["weights_file"]).is_file()
        except (OSError, ValueError, KeyError, TypeError) as err:  # half-written or broken card
            log.warning("skipping the model card %s: %s: %s", card_path.name, type(err).__name__, str(err)[:200])
            continue
        if present:
            entries.append(entry)
    # the supervised model leads its family's list (it is the tab's default), DINO follows
    order = ("vit", "swin", "crossformer", "twins", "navit", "dino", "mae")
    return tuple(sorted(entries, key=lambda e: order.index(e.family) if e.family in order else len(order)))


def _user_entry(card_path: Path) -> ModelEntry | None:
    """The entry of a card ``add`` wrote (None for any other JSON file beside a checkpoint).
    ``timm_model`` keeps its pretrained tag (its default preprocessing and family) and
    ``model_kwargs`` the arguments the checked model was built with (its input size)."""
    card = json.loads(card_path.read_text(encoding="utf-8"))
    if not isinstance(card, dict) or "timm_model" not in card:
        return None
    base = torchvision_entry(card["timm_model"]) or timm_entry(card["timm_model"])
    if base is None:
        raise ValueError(f"unknown architecture {str(card['timm_model'])[:80]!r}")
    kwargs = card.get("model_kwargs", {})
    if not isinstance(kwargs, dict) or not all(isinstance(v, (int, bool, list)) for v in kwargs.values()):
        raise ValueError("model_kwargs must map names to numbers, booleans or lists")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    name = str(card.get("name") or card_path.stem)[:120]
    return ModelEntry(key=card_path.stem, label_en=name, label_zh=name, family=base.family,
                      timm_model=base.timm_model, model_kwargs=MappingProxyType({**base.model_kwargs, **kwargs}),
                      note_en=f"Your model ({base.timm_model}), added to {card_path.parent.name}/.",
                      note_zh=f"你添加到 {card_path.parent.name}/ 的模型（{base.timm_model}）。")


def user_entries(checkpoint_dir: Path = CHECKPOINT_DIR) -> tuple[ModelEntry, ...]:
    """The user's own models in ``checkpoints/`` (``python -m explorer add``): a card
    ``<name>.json`` naming its ``timm_model``, beside ``<name>.safetensors``; the card's classes
    and preprocessing travel with the weights (core/checkpoints.py)."""
    entries = []
    for card_path in sorted(checkpoint_dir.glob("*.json")):
        if card_path.name.startswith("demo_") or not card_path.with_suffix(".safetensors").is_file():
            continue
        try:
            entry = _cached_card(card_path, _user_entry)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            _warn_once(card_path, f"skipping the model card {card_path.name}: {type(err).__name__}: {str(err)[:200]}")
            continue
        if entry is not None:  # None: a card of another kind (a zoo model's preprocessing)
            entries.append(entry)
    return tuple(entries)


_WARNED: set[tuple[Path, str]] = set()


def _warn_once(path: Path, message: str) -> None:
    if (path, message) not in _WARNED:
        _WARNED.add((path, message))
        log.warning(message)


def all_entries() -> tuple[ModelEntry, ...]:
    """Demo models first (they work offline), the user's own, then hub models."""
    return demo_entries() + user_entries() + HUB_ENTRIES + MANUAL_ENTRIES


def entries_for(families: tuple[str, ...]) -> tuple[ModelEntry, ...]:
    return tuple(e for e in all_entries() if e.family in families)


# timm's module of an architecture -> the family (the demo that stands in offline) and the
# arguments that let it take any input size, as the zoo's entries of that family have them
_TIMM_FAMILIES = {"vision_transformer": ("vit", _DYN), "deit": ("vit", _DYN),
                  "vision_transformer_hybrid": ("vit", {}), "vitamin": ("vit", {}),
                  "swin_transformer": ("swin", _ANY_SIZE["swin"]), "swin_transformer_v2": ("swin", {}),
                  "twins": ("twins", {}), "crossformer": ("crossformer", {}), "navit": ("navit", {}),
                  "mae": ("mae", {})}
MAX_NAME_LENGTH = 120  # the longest timm name is ~70 characters
# torchvision's ViT builders -> the timm architecture with the same layers (its state dicts are
# converted exactly on loading: core/checkpoints.py)
TORCHVISION_VITS = {"vit_b_16": "vit_base_patch16_224", "vit_b_32": "vit_base_patch32_224",
                    "vit_l_16": "vit_large_patch16_224", "vit_l_32": "vit_large_patch32_224",
                    "vit_h_14": "vit_huge_patch14_224"}


def torchvision_entry(name: str) -> ModelEntry | None:
    """``vit_b_16`` … ``vit_h_14``: the timm architecture of the same layers, with no hub weights
    of its own (timm's are not torchvision's): the user's file gives them (``--weights``)."""
    arch = TORCHVISION_VITS.get(name)
    if arch is None:
        return None
    return ModelEntry(key=name, label_en=f"torchvision {name} (as timm {arch})",
                      label_zh=f"torchvision {name}（对应 timm {arch}）", family="vit", timm_model=arch,
                      model_kwargs=MappingProxyType(dict(_DYN)),
                      note_en="torchvision's ViT: give it your checkpoint (torch.save(model.state_dict())).",
                      note_zh="torchvision 的 ViT：请给它你的检查点（torch.save(model.state_dict())）。")


def timm_entry(name: str) -> ModelEntry | None:
    """An entry for any timm model name, with or without a pretrained tag; a name without one
    takes timm's default tag, as ``timm.create_model`` does. None for a name timm does not know.
    The weights resolve as for the zoo's hub models (``timm/<arch>.<tag>`` on the hub)."""
    import timm
    from timm.models import get_pretrained_cfg, model_entrypoint

    import explorer.models  # noqa: F401  (registers CrossFormer, NaViT and MAE with timm)

    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH or not timm.is_model(name):
        return None
    arch, _, tag = name.partition(".")
    try:
        cfg = get_pretrained_cfg(name)  # the tag's, or the architecture's default
    except RuntimeError:  # a tag the architecture does not have
        return None
    tag = tag or (getattr(cfg, "tag", None) or "")
    full = f"{arch}.{tag}" if tag else arch
    on_hub = cfg is not None and tag and getattr(cfg, "hf_hub_id", None) == f"timm/{full}"
    module = model_entrypoint(arch).__module__.rsplit(".", 1)[-1]
    family, kwargs = _TIMM_FAMILIES.get(module, (module, {}))
    if family == "vit" and "dino" in tag:
        family = "dino"
    note_en, note_zh = ("A timm model outside the zoo.", "zoo 之外的 timm 模型。") if on_hub else (
        "A timm architecture with no weights on the hub: give it your checkpoint.",
        "Hub 上没有权重的 timm 结构：请给它你的检查点。")
    return ModelEntry(key=full if on_hub else arch, label_en=full, label_zh=full, family=family,
                      timm_model=full if on_hub else arch, pretrained_tag=tag if on_hub else None,
                      model_kwargs=MappingProxyType(dict(kwargs)), note_en=note_en, note_zh=note_zh)


def get_entry(key: str) -> ModelEntry:
    """The zoo's entry for ``key``, else one for the timm model of that name (a bare
    architecture name is the zoo's entry when its default tag is in the zoo)."""
    for entry in all_entries():
        if entry.key == key:
            return entry
    found = torchvision_entry(key) if isinstance(key, str) else None
    if found is not None:
        return found
    found = timm_entry(key)
    if found is not None:
        for entry in all_entries():
            if entry.key == found.key:
                return entry
        return found
    shown = key if len(str(key)) <= 60 else f"{str(key)[:59]}…"  # never echo unbounded input
    raise KeyError(f"unknown model {shown!r}: neither a zoo key (`python -m explorer models`) nor a timm "
                   "model name (timm.list_models())")


def stand_in_for(entry: ModelEntry) -> ModelEntry | None:
    """The bundled demo model that replaces ``entry`` when its weights are unavailable."""
    for demo in demo_entries():
        if demo.family == entry.family and demo.key != entry.key:
            return demo
    return None


def name_taken(name: str) -> bool:
    """Whether ``name`` already names a model that is not the user's own (the zoo's, a timm or a
    torchvision architecture): a user's file of that name would pass for its weights."""
    mine = any(e.key == name for e in user_entries())
    return not mine and (any(e.key == name for e in all_entries()) or timm_entry(name) is not None
                         or torchvision_entry(name) is not None)
