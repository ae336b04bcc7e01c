"""Labelled image folders, for ``evaluate`` and ``train finetune``, mapped to a model's classes.

Layouts:
- one folder per class: ImageNet's train/val class folders (WordNet ids, ``n01440764/``), CIFAR-10
  exported to folders (``airplane/`` …), anything ``torchvision.datasets.ImageFolder`` reads;
- the flat official ImageNet validation folder (``ILSVRC2012_val_00000001.JPEG`` …) with its
  ground truth: Kaggle's ``LOC_val_solution.csv`` (ImageId, then the WordNet id first in
  PredictionString), or the devkit's ``ILSVRC2012_validation_ground_truth.txt`` (one ILSVRC2012_ID
  per line, 1-based, in file order) with its synset list — the devkit's ``meta.mat`` or a text file
  with one WordNet id per line in ID order (the IDs are *not* the sorted order models use).

A folder or WordNet id maps to a class by WordNet id (a model with ImageNet-1k's classes: timm's
``ImageNetInfo`` order), else by name (case, ``_``/``-``/spaces alike; for ImageNet's
descriptions, any of the comma-separated synonyms), else — only for a model whose classes have
no names — by sorted order, as ``ImageFolder`` numbers them in training. Anything else is one
message that names the folders that match nothing.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from explorer.core.errors import UserFacingError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm"}
KAGGLE_FILE = "LOC_val_solution.csv"
DEVKIT_FILE = "ILSVRC2012_validation_ground_truth.txt"
WNID = re.compile(r"n\d{8}")
UNNAMED = re.compile(r"class \d+")  # how a classifier without names lists its classes


@dataclass(frozen=True)
class LabelledImages:
    paths: tuple[Path, ...]  # sorted: every process of a distributed run sees the same order
    labels: tuple[int, ...]  # the model's class index of each image
    layout: str  # said to the user: which layout was read
    mapping: str  # how names became class indices
    class_names: tuple[str, ...]  # the folders' (or ground truth's) names, sorted

    def __len__(self) -> int:
        return len(self.paths)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.lower()).strip()


def _imagenet_wnids() -> tuple[str, ...]:
    from timm.data import ImageNetInfo

    return tuple(ImageNetInfo().label_names())


def _is_imagenet(model_names: tuple[str, ...]) -> bool:
    from explorer.core.weights import imagenet_class_names

    return len(model_names) == 1000 and model_names == imagenet_class_names()


def _by_name(names: list[str], model_names: tuple[str, ...]) -> tuple[dict[str, int], list[str], list[str]]:
    """(name -> index, names matching nothing, names matching several classes): the exact name
    first, then the normalised one, then a comma-separated synonym (ImageNet's "tench, Tinca
    tinca") only where one class has it (ImageNet has two "crane"s, and "harp" is not harmonica)."""
    exact: dict[str, set[int]] = {}
    full: dict[str, set[int]] = {}
    alias: dict[str, set[int]] = {}
    for index, name in enumerate(model_names):
        exact.setdefault(name, set()).add(index)
        full.setdefault(_norm(name), set()).add(index)
        for part in name.split(",")[1:] if "," in name else ():
            alias.setdefault(_norm(part), set()).add(index)
        if "," in name:
            alias.setdefault(_norm(name.split(",")[0]), set()).add(index)
    mapping, missing, ambiguous = {}, [], []
    for name in names:
        key = _norm(name)
        found = exact.get(name) or full.get(key) or alias.get(key)
        if not found:
            missing.append(name)
        elif len(found) > 1:
            ambiguous.append(name)
        else:
            mapping[name] = next(iter(found))
    return mapping, missing, ambiguous


def class_mapping(names: list[str], model_names: tuple[str, ...], num_classes: int,
                  model: str = "the model") -> tuple[dict[str, int], str]:
    """Each of ``names`` (folders or WordNet ids) -> the model's class index, and how; two names
    for one class, or a name of several, are refused (they would mislabel images silently)."""
    if names and all(WNID.fullmatch(n) for n in names) and _is_imagenet(model_names):
        wnids = _imagenet_wnids()
        unknown = [n for n in names if n not in wnids]
        if unknown:
            raise UserFacingError(f"{len(unknown)} WordNet id(s) are not among ImageNet-1k's 1000 classes, e.g. "
                                  f"{', '.join(unknown[:5])}.", f"有 {len(unknown)} 个 WordNet id 不在 ImageNet-1k 的 1000 "
                                  f"个类别中，例如 {', '.join(unknown[:5])}。")
        return {n: wnids.index(n) for n in names}, "by WordNet id (ImageNet-1k)"
    named = bool(model_names) and not all(UNNAMED.fullmatch(n) for n in model_names)
    if named:
        mapping, missing, ambiguous = _by_name(names, model_names)
        if ambiguous:
            raise UserFacingError(f"Folder(s) {', '.join(ambiguous[:6])} name several classes of {model}: use the "
                                  "full class name (or the WordNet id for an ImageNet model).",
                                  f"文件夹 {', '.join(ambiguous[:6])} 对应 {model} 的多个类别：请使用完整的类别名"
                                  "（ImageNet 模型也可用 WordNet id）。")
        clashes = sorted({n for n in mapping if list(mapping.values()).count(mapping[n]) > 1})
        if clashes:
            raise UserFacingError(f"Folders {', '.join(clashes[:6])} name the same class of {model}: merge them.",
                                  f"文件夹 {', '.join(clashes[:6])} 对应 {model} 的同一个类别：请合并它们。")
        if not missing:
            return mapping, "by class name"
        shown = ", ".join(model_names[:8]) + (" …" if len(model_names) > 8 else "")
        raise UserFacingError(
            f"{len(missing)} of {len(names)} folder(s) name no class of {model}: {', '.join(missing[:6])}"
            f"{' …' if len(missing) > 6 else ''}. Its classes: {shown}. Name the folders after its classes "
            "(or their WordNet ids for an ImageNet model), or give the class names (--labels).",
            f"{len(names)} 个文件夹中有 {len(missing)} 个不对应 {model} 的任何类别：{', '.join(missing[:6])}"
            f"{' …' if len(missing) > 6 else ''}。它的类别：{shown}。请用它的类别名（ImageNet 模型也可用 WordNet id）"
            "命名文件夹，或给出类别名（--labels）。")
    if len(names) == num_classes:
        return {n: i for i, n in enumerate(sorted(names))}, "by sorted folder order (the model's classes have no names)"
    raise UserFacingError(
        f"{model} has {num_classes} unnamed classes and the data {len(names)} folders: give its class names "
        "(--labels, or a card beside the weights) to map the folders.",
        f"{model} 有 {num_classes} 个没有名字的类别，而数据有 {len(names)} 个文件夹：请给出它的类别名"
        "（--labels，或权重旁的 card）以对应文件夹。")


def _find(data: Path, name: str) -> Path | None:
    for folder in (data, data.parent):
        if (folder / name).is_file():
            return folder / name
    return None


def read_synsets(path: Path) -> list[str]:
    """The devkit's synsets in ILSVRC2012_ID order: ``meta.mat`` or one WordNet id per line —
    1000 distinct ids, and not the sorted order (that list is another file: Caffe's synsets.txt)."""
    try:
        if path.suffix == ".mat":
            from scipy.io import loadmat

            synsets = loadmat(str(path), squeeze_me=True)["synsets"]
            by_id = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets}
            order = [by_id.get(i, "") for i in range(1, 1001)]
        else:
            order = [line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise UserFacingError(f"{path.name}: cannot be read as the devkit's synset list ({type(err).__name__}).",
                              f"{path.name}：无法作为开发包的 synset 列表读取（{type(err).__name__}）。") from None
    if len(order) != 1000 or len(set(order)) != 1000 or not all(WNID.fullmatch(w) for w in order):
        raise UserFacingError(f"{path.name}: expected the 1000 ImageNet WordNet ids (n01440764 …), one per line, "
                              "in ILSVRC2012_ID order.",
                              f"{path.name}：应为 ImageNet 的 1000 个 WordNet id（n01440764 …），每行一个，按 ILSVRC2012_ID 排序。")
    if order == sorted(order):
        raise UserFacingError(f"{path.name} lists the synsets in sorted order, not the devkit's ILSVRC2012_ID order "
                              "(ID 1 is n02119789): give the devkit's data/meta.mat.",
                              f"{path.name} 按字母顺序列出 synset，而不是开发包的 ILSVRC2012_ID 顺序（ID 1 是 n02119789）："
                              "请给出开发包中的 data/meta.mat。")
    return order


def _flat_truth(data: Path, images: list[Path], synsets: Path | None) -> tuple[dict[str, str], str]:
    """Image stem -> WordNet id, from whichever ground-truth file is there."""
    kaggle = _find(data, KAGGLE_FILE)
    if kaggle is not None:
        with kaggle.open(encoding="utf-8", newline="") as handle:
            rows = csv.DictReader(handle)
            return {r["ImageId"]: r["PredictionString"].split()[0] for r in rows}, f"flat, labels from {kaggle.name}"
    devkit = _find(data, DEVKIT_FILE)
    if devkit is None:
        raise UserFacingError(
            f"{data} has images but no class folders, and no {KAGGLE_FILE} or {DEVKIT_FILE} beside them: "
            "put the images into one folder per class, or the ground-truth file into the folder (or its parent).",
            f"{data} 中有图片但没有类别文件夹，旁边也没有 {KAGGLE_FILE} 或 {DEVKIT_FILE}：请把图片按类别放进各自的文件夹，"
            "或把标注文件放进该文件夹（或其上一级）。")
    synsets = synsets or _find(data, "meta.mat")
    if synsets is None:
        raise UserFacingError(f"{DEVKIT_FILE} numbers the classes by the devkit's ILSVRC2012_ID: give its synset "
                              "list (--synsets data/meta.mat from the devkit, or a text file, one WordNet id per line "
                              "in that order).",
                              f"{DEVKIT_FILE} 用开发包的 ILSVRC2012_ID 编号类别：请给出它的 synset 列表"
                              "（--synsets 开发包中的 data/meta.mat，或每行一个 WordNet id 的文本文件）。")
    order = read_synsets(Path(synsets))
    ids = [int(line) for line in devkit.read_text(encoding="utf-8").split()]
    # the devkit's line i is ILSVRC2012_val_<i, 8 digits>, in file order
    return ({f"ILSVRC2012_val_{i + 1:08d}": order[n - 1] for i, n in enumerate(ids)},
            f"flat, labels from {devkit.name} + {Path(synsets).name}")


def class_folders(data: str | Path) -> tuple[str, ...]:
    """The class folders under ``data`` (those holding images), sorted as ImageFolder sorts them."""
    data = Path(data)
    if not data.is_dir():
        raise UserFacingError(f"--data {data}: no such folder.", f"--data {data}：没有这个文件夹。")
    return tuple(sorted(d.name for d in data.iterdir() if d.is_dir() and not d.name.startswith(".") and _images_in(d)))


def read_folder(data: str | Path, model_names: tuple[str, ...] | None, num_classes: int, model: str = "the model",
                synsets: str | Path | None = None) -> LabelledImages:
    """Every image under ``data`` with its class index for a model with ``model_names``."""
    data = Path(data)
    if not data.is_dir():
        raise UserFacingError(f"--data {data}: no such folder.", f"--data {data}：没有这个文件夹。")
    model_names = tuple(model_names or ())
    folders = sorted(d for d in data.iterdir() if d.is_dir() and not d.name.startswith("."))
    per_class = {d.name: _images_in(d) for d in folders}
    per_class = {name: files for name, files in per_class.items() if files}
    if per_class:
        mapping, how = class_mapping(list(per_class), model_names, num_classes, model)
        pairs = [(path, mapping[name]) for name, files in per_class.items() for path in files]
        layout = f"one folder per class ({len(per_class)} folders)"
    else:
        images = sorted(p for p in data.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            raise UserFacingError(f"--data {data}: no images in it or in folders under it.",
                                  f"--data {data}：其中及其子文件夹中都没有图片。")
        truth, layout = _flat_truth(data, images, Path(synsets) if synsets else None)
        unlabelled = [p.name for p in images if p.stem not in truth]
        if unlabelled:
            raise UserFacingError(f"{len(unlabelled)} image(s) have no line in the ground truth, e.g. "
                                  f"{', '.join(unlabelled[:3])}.",
                                  f"有 {len(unlabelled)} 张图片在标注文件中没有对应的行，例如 {', '.join(unlabelled[:3])}。")
        mapping, how = class_mapping(sorted({truth[p.stem] for p in images}), model_names, num_classes, model)
        pairs = [(p, mapping[truth[p.stem]]) for p in images]
        per_class = {w: [] for w in mapping}
    pairs.sort(key=lambda pair: str(pair[0]))
    return LabelledImages(paths=tuple(p for p, _ in pairs), labels=tuple(label for _, label in pairs),
                          layout=layout, mapping=how, class_names=tuple(sorted(per_class)))
