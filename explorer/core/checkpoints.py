"""A user's own checkpoint: what travels with it (a card beside it, a labels file) and the
layouts other than timm's that are converted exactly (torchvision's ViTs).

A card is ``<checkpoint stem>.json`` next to the weights, the same fields the bundled demo
models' cards have: ``class_names``, ``mean``, ``std``, ``input_size`` ([3, H, W]),
``interpolation``, ``crop_pct`` and ``crop_mode`` as timm's data config has them ("center": resize
the short side to input/crop_pct and crop the centre; "squash": resize to input/crop_pct ignoring
the aspect ratio and crop the centre, so that "squash" with crop_pct 1 — the default when a card
says squash alone — is ``transforms.Resize((H, W))``). A labels file is one
class name per line or a JSON list. Both are validated before anything uses them.

torchvision's ``VisionTransformer`` (``vit_b_16`` … ``vit_h_14``, the five builders' layouts only:
their head counts follow from the width, which the weights do not show) computes exactly what timm's
does with the same weights: conv patch embedding, CLS token first, learned position embedding,
pre-norm blocks with LayerNorm(eps=1e-6), exact GELU, one ``in_proj`` for q, k, v in that order,
a final LayerNorm and a linear head on CLS. So the conversion is a renaming of tensors.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from explorer.core.errors import UserFacingError

MAX_CLASSES = 100_000
MAX_LABEL_FILE_BYTES = 4 * 1024 * 1024
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")
CROP_MODES = ("center", "squash", "border")


class CardError(UserFacingError):
    """A card or labels file that cannot be used as it is."""


@dataclass(frozen=True)
class Card:
    """What a checkpoint says about itself; a field left out keeps the architecture's default."""

    class_names: tuple[str, ...] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    input_size: tuple[int, int, int] | None = None
    interpolation: str | None = None
    crop_pct: float | None = None
    crop_mode: str | None = None
    source: str = ""  # the file it came from, for the banner
    names_source: str = ""  # where the class names came from (a merged card has several sources)
    preprocessing_source: str = ""  # where the preprocessing fields came from

    def data_config(self, config: dict) -> dict:
        """timm's data config with this card's fields in place of the defaults."""
        config = dict(config)
        for name in _CONFIG_FIELDS:
            value = getattr(self, name)
            if value is not None:
                config[name] = value
        return config

    @property
    def gives_preprocessing(self) -> bool:
        return any(getattr(self, name) is not None for name in _CONFIG_FIELDS)

    def merged(self, other: "Card") -> "Card":
        """This card with ``other``'s given fields on top (command-line flags over a card)."""
        fields = {name: getattr(other, name) if getattr(other, name) is not None else getattr(self, name)
                  for name in ("class_names", *_CONFIG_FIELDS)}
        names = other.names_source if other.class_names is not None else self.names_source
        pre = " + ".join(c.preprocessing_source for c in (self, other) if c.gives_preprocessing)
        return Card(**fields, source=" + ".join(s for s in (self.source, other.source) if s),
                    names_source=names, preprocessing_source=pre)


_CONFIG_FIELDS = ("mean", "std", "input_size", "interpolation", "crop_pct", "crop_mode")


def _triple(value, name: str, where: str, positive: bool = False) -> tuple[float, float, float]:
    ok = isinstance(value, (list, tuple)) and len(value) == 3 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if ok and positive:
        ok = all(v > 0 for v in value)
    if not ok:
        raise CardError(f"{where}: {name} must be three {'positive ' if positive else ''}numbers (R, G, B).",
                        f"{where}：{name} 必须是三个{'正' if positive else ''}数（R、G、B）。")
    return tuple(float(v) for v in value)


def _names(value, where: str) -> tuple[str, ...]:
    if (not isinstance(value, (list, tuple)) or not 0 < len(value) <= MAX_CLASSES
            or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value)):
        raise CardError(f"{where}: the class names must be a list of 1 to {MAX_CLASSES} non-empty texts.",
                        f"{where}：类别名必须是 1 到 {MAX_CLASSES} 个非空文本组成的列表。")
    return tuple(v.strip() for v in value)


def card_from_dict(data, where: str) -> Card:
    if not isinstance(data, dict):
        raise CardError(f"{where} is not a JSON object.", f"{where} 不是 JSON 对象。")
    fields: dict = {"source": where}
    if "class_names" in data:
        fields["class_names"] = _names(data["class_names"], where)
    for name in ("mean", "std"):
        if name in data:
            fields[name] = _triple(data[name], name, where, positive=name == "std")
    if "input_size" in data:
        size = data["input_size"]
        if isinstance(size, int):
            size = [3, size, size]
        if (not isinstance(size, (list, tuple)) or len(size) != 3 or size[0] != 3
                or not all(isinstance(v, int) and 16 <= v <= 4096 for v in size[1:])):
            raise CardError(f"{where}: input_size must be [3, H, W] with 16 ≤ H, W ≤ 4096.",
                            f"{where}：input_size 必须是 [3, H, W]，且 16 ≤ H, W ≤ 4096。")
        fields["input_size"] = tuple(int(v) for v in size)
    if "interpolation" in data:
        if data["interpolation"] not in INTERPOLATIONS:
            raise CardError(f"{where}: interpolation must be one of {', '.join(INTERPOLATIONS)}.",
                            f"{where}：interpolation 必须是 {', '.join(INTERPOLATIONS)} 之一。")
        fields["interpolation"] = data["interpolation"]
    if "crop_pct" in data:
        crop = data["crop_pct"]
        if not isinstance(crop, (int, float)) or isinstance(crop, bool) or not 0.1 <= crop <= 1.0:
            raise CardError(f"{where}: crop_pct must be a number in [0.1, 1].",
                            f"{where}：crop_pct 必须是 [0.1, 1] 之间的数。")
        fields["crop_pct"] = float(crop)
    if "crop_mode" in data:
        if data["crop_mode"] not in CROP_MODES:
            raise CardError(f"{where}: crop_mode must be one of {', '.join(CROP_MODES)}.",
                            f"{where}：crop_mode 必须是 {', '.join(CROP_MODES)} 之一。")
        fields["crop_mode"] = data["crop_mode"]
        if data["crop_mode"] == "squash":  # squash alone means no crop: transforms.Resize((H, W))
            fields.setdefault("crop_pct", 1.0)
    card = Card(**fields)
    return dataclasses.replace(card, names_source=where if card.class_names is not None else "",
                               preprocessing_source=where if card.gives_preprocessing else "")


def _read_text(path: Path, what: tuple[str, str]) -> str:
    """The file's text; ``what`` names it (English, Chinese) in the messages."""
    en, zh = what
    if not path.is_file():
        raise CardError(f"The {en} {path.name} does not exist.", f"{zh}文件 {path.name} 不存在。")
    if path.stat().st_size > MAX_LABEL_FILE_BYTES:
        raise CardError(f"The {en} {path.name} is larger than {MAX_LABEL_FILE_BYTES // 2**20} MB.",
                        f"{zh}文件 {path.name} 超过 {MAX_LABEL_FILE_BYTES // 2**20} MB。")
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise CardError(f"The {en} {path.name} is not UTF-8 text.", f"{zh}文件 {path.name} 不是 UTF-8 文本。") from err


def read_card(path: str | Path) -> Card:
    path = Path(path)
    try:
        data = json.loads(_read_text(path, ("card", "卡片")))
    except json.JSONDecodeError as err:
        raise CardError(f"The card {path.name} is not valid JSON ({err.msg}, line {err.lineno}).",
                        f"卡片文件 {path.name} 不是有效的 JSON（{err.msg}，第 {err.lineno} 行）。") from err
    return card_from_dict(data, path.name)


def read_labels(path: str | Path) -> tuple[str, ...]:
    """Class names from a file: a JSON list, or one name per line (blank lines skipped)."""
    path = Path(path)
    text = _read_text(path, ("labels file", "类别名"))
    if text.lstrip().startswith("["):
        try:
            return _names(json.loads(text), path.name)
        except json.JSONDecodeError as err:
            raise CardError(f"{path.name} starts like a JSON list but is not valid JSON ({err.msg}).",
                            f"{path.name} 看起来是 JSON 列表，但不是有效的 JSON（{err.msg}）。") from err
    return _names([line.strip() for line in text.splitlines() if line.strip()], path.name)


def labels_card(path: str | Path) -> Card:
    """A card that gives class names only, from a labels file."""
    return card_from_dict({"class_names": list(read_labels(path))}, Path(path).name)


def read_labels_or_card(path: str | Path) -> tuple[Card, str | None]:
    """What a file given beside a checkpoint says: a card (a JSON object, with the architecture
    ``timm_model`` when ``add`` wrote it) or class names (a JSON list, or one per line). Returns
    the card and the architecture it names, if any."""
    path = Path(path)
    text = _read_text(path, ("labels or card file", "类别名或卡片"))
    if not text.lstrip().startswith("{"):
        return labels_card(path), None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CardError(f"The card {path.name} is not valid JSON ({err.msg}, line {err.lineno}).",
                        f"卡片文件 {path.name} 不是有效的 JSON（{err.msg}，第 {err.lineno} 行）。") from err
    arch = data.get("timm_model") if isinstance(data, dict) else None
    if arch is not None and (not isinstance(arch, str) or not 0 < len(arch) <= 120):
        raise CardError(f"{path.name}: timm_model must be a model name.", f"{path.name}：timm_model 必须是模型名称。")
    return card_from_dict(data, path.name), arch


# The usual normalisations of a fine-tuned model, offered where no card says which it was trained with
PRESETS: dict[str, Card] = {
    name: Card(mean=mean, std=std, source=label, preprocessing_source=label)
    for name, label, mean, std in (
        ("imagenet", "ImageNet", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ("cifar10", "CIFAR-10", (0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616)),
        ("half", "0.5/0.5", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)))
}


def card_beside(weights: Path) -> Card | None:
    """The card ``<stem>.json`` next to a checkpoint, if there is one."""
    path = weights.with_suffix(".json")
    return read_card(path) if path.is_file() else None


# --------------------------------------------------------------------------- torchvision ViTs

_TV_SIZES = {768: ("base", 12), 1024: ("large", 24), 1280: ("huge", 32)}  # width -> (timm size, depth)
# (width, patch) of torchvision's five builders: their head counts (12, 16, 16) are fixed by the
# width, which the weights do not show, so only these layouts are converted
_TV_BUILDERS = {(768, 16), (768, 32), (1024, 16), (1024, 32), (1280, 14)}
_TV_BLOCK = re.compile(r"^encoder\.layers\.encoder_layer_(\d+)\.(.+)$")
_TV_IN_BLOCK = {"ln_1": "norm1", "ln_2": "norm2", "self_attention.in_proj_": "attn.qkv.",
                "self_attention.out_proj": "attn.proj", "mlp.0": "mlp.fc1", "mlp.3": "mlp.fc2",
                "mlp.linear_1": "mlp.fc1", "mlp.linear_2": "mlp.fc2"}  # linear_*: torchvision < 0.13


USER_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


def check_user_model_name(name: str) -> str:
    """A name for ``checkpoints/<name>.safetensors``: letters, digits, ``_ - .``; not ``demo_``."""
    if not USER_MODEL_NAME.fullmatch(name) or name.startswith("demo_"):
        raise UserFacingError(f"{name[:80]!r}: name the model with letters, digits, '_', '-' and '.', not starting "
                              "with demo_.", f"{name[:80]!r}：模型名只能用字母、数字、'_'、'-' 和 '.'，且不能以 demo_ 开头。")
    return name


def save_user_model(target: Path, state: dict[str, torch.Tensor], timm_model: str, model_kwargs: dict,
                    num_classes: int, data_config: dict, class_names=None, extra: dict | None = None) -> dict:
    """Write ``target`` (safetensors, atomically) and its card beside it, as ``add`` and
    ``train finetune`` make them: the timm name and arguments that rebuild the model, its classes
    (``class_names`` where known) and the preprocessing as checked, so that it reopens the same."""
    from safetensors.torch import save_file

    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(part))
    part.replace(target)
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in model_kwargs.items()}
    record = {"name": target.stem, "timm_model": timm_model, "model_kwargs": kwargs, "num_classes": int(num_classes)}
    if class_names is not None:
        record["class_names"] = list(class_names)
    c = data_config
    record.update(mean=list(c["mean"]), std=list(c["std"]), input_size=list(c["input_size"]),
                  interpolation=c.get("interpolation", "bicubic"), crop_pct=float(c.get("crop_pct", 1.0)),
                  crop_mode=c.get("crop_mode", "center"), **(extra or {}))
    target.with_suffix(".json").write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    return record


def is_torchvision_vit(state: dict) -> bool:
    return "conv_proj.weight" in state and "encoder.pos_embedding" in state and "class_token" in state


@dataclass(frozen=True)
class TorchvisionViT:
    timm_model: str  # the timm architecture these weights fit
    img_size: int
    num_classes: int
    state: dict  # the weights under timm's names


def torchvision_to_timm(state: dict) -> TorchvisionViT:
    """torchvision ViT weights under timm's names, and the timm architecture they fit."""
    if any(k.startswith("heads.pre_logits") for k in state):
        raise CardError("This torchvision ViT has a pre-logits layer (representation_size), which timm's "
                        "ViT has no place for.", "这个 torchvision ViT 带有 pre-logits 层（representation_size），"
                        "timm 的 ViT 没有对应的层。")
    width, _, patch, _ = state["conv_proj.weight"].shape
    depth = 1 + max((int(m.group(1)) for k in state if (m := _TV_BLOCK.match(k))), default=-1)
    tokens = state["encoder.pos_embedding"].shape[1] - 1
    grid = math.isqrt(tokens)
    known = (width, patch) in _TV_BUILDERS and _TV_SIZES.get(width, (None, None))[1] == depth
    if not known or grid * grid != tokens:
        raise CardError(f"A torchvision ViT of width {width}, depth {depth}, patch {patch} and {tokens} patches "
                        "matches none of vit_b_16, vit_b_32, vit_l_16, vit_l_32, vit_h_14.",
                        f"宽度 {width}、深度 {depth}、patch {patch}、{tokens} 个 patch 的 torchvision ViT "
                        "与 vit_b_16、vit_b_32、vit_l_16、vit_l_32、vit_h_14 都不对应。")
    out: dict[str, torch.Tensor] = {}
    unused = []
    for key, value in state.items():
        if key.startswith("conv_proj."):
            out["patch_embed.proj." + key.removeprefix("conv_proj.")] = value
        elif key == "class_token":
            out["cls_token"] = value
        elif key == "encoder.pos_embedding":
            out["pos_embed"] = value
        elif key.startswith("encoder.ln."):
            out["norm." + key.removeprefix("encoder.ln.")] = value
        elif key.startswith("heads.head."):
            out["head." + key.removeprefix("heads.head.")] = value
        elif key in ("heads.weight", "heads.bias"):  # `model.heads = nn.Linear(768, 10)`, as the notes do
            out["head." + key.removeprefix("heads.")] = value
        elif m := _TV_BLOCK.match(key):
            rest = m.group(2)
            for old, new in _TV_IN_BLOCK.items():
                if rest.startswith(old):
                    out[f"blocks.{m.group(1)}.{new}{rest.removeprefix(old)}"] = value
                    break
            else:
                unused.append(key)
        else:
            unused.append(key)
    if unused:
        raise CardError(f"Keys of this torchvision ViT that have no place in timm's: {unused[:5]}",
                        f"这个 torchvision ViT 中以下键在 timm 的 ViT 中没有对应：{unused[:5]}")
    size = _TV_SIZES[width][0]
    num_classes = int(out["head.weight"].shape[0]) if "head.weight" in out else 0
    return TorchvisionViT(f"vit_{size}_patch{patch}_224", grid * patch, num_classes, out)
