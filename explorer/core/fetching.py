"""Putting real weights into ``checkpoints/`` on request (``python -m explorer fetch``): the one
place that reaches the network. Hub files come through ``huggingface_hub.hf_hub_download`` (its
cache, its progress bars, ``HF_ENDPOINT`` for a mirror); the MAE decoder checkpoints, which only
exist on dl.fbaipublicfiles.com, through ``torch.hub.download_url_to_file`` (a progress bar too).
CrossFormer's official weights are on Google Drive and Baidu only: fetch says where they are."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from explorer.core.errors import UserFacingError
from explorer.core.zoo import CHECKPOINT_DIR, ModelEntry, get_entry

# A small set of real models that covers every tab (the bundled demos cover them offline):
# attention (ViT-S/16, DeiT-S), Swin and position bias (Swin-T), Twins (SVT-S), DINO (S/16, S/8),
# MAE lab (the base decoder checkpoint). About 0.7 GB together.
RECOMMENDED: tuple[str, ...] = (
    "vit_small_patch16_224.augreg_in21k_ft_in1k",
    "deit_small_patch16_224.fb_in1k",
    "swin_tiny_patch4_window7_224.ms_in1k",
    "twins_svt_small.in1k",
    "vit_small_patch16_224.dino",
    "vit_small_patch8_224.dino",
    "mae_visualize_vit_base",
)


@dataclass(frozen=True)
class Fetched:
    key: str
    path: Path | None  # where the file now is, or None
    problem: str = ""  # why not, in one line


def direct_url(entry: ModelEntry) -> str | None:
    """The download address of a file that is not on the hub, where it is a plain file URL."""
    source = entry.manual_source or ""
    if source.startswith("https://") and entry.release_filenames and source.endswith(entry.release_filenames[0]):
        return source
    return None


def fetch(key: str, checkpoint_dir: Path = CHECKPOINT_DIR) -> Path:
    """Download ``key``'s weights into ``checkpoint_dir`` and return the file's path (a bundled
    demo's is already there)."""
    from explorer.core.weights import download_instructions, hub_file, local_weight_file

    entry = get_entry(key)
    if entry.is_demo:  # bundled: already there (or missing from this checkout)
        path = local_weight_file(entry, checkpoint_dir)
        if path is None or not path.is_file():
            raise UserFacingError(f"{entry.key} is bundled but its file is missing from {checkpoint_dir}.",
                                  f"{entry.key} 是内置模型，但 {checkpoint_dir} 中缺少它的文件。")
        return path
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    if entry.hf_hub_id is not None:
        path, _ = hub_file(entry, allow_download=True)
        target = checkpoint_dir / f"{entry.local_weight_stem}.safetensors"
        partial = target.with_name(target.name + ".part")
        shutil.copyfile(path, partial)
        partial.replace(target)  # an interrupted copy never sits under the real name
        return target
    url = direct_url(entry)
    if url is None:
        raise UserFacingError(*download_instructions(entry, checkpoint_dir))
    import torch.hub

    target = checkpoint_dir / entry.release_filenames[0]
    partial = target.with_name(target.name + ".part")
    torch.hub.download_url_to_file(url, str(partial), progress=True)
    partial.replace(target)  # never a half-written checkpoint under the real name
    return target


def fetch_all(keys: tuple[str, ...], checkpoint_dir: Path = CHECKPOINT_DIR) -> list[Fetched]:
    """Each of ``keys`` in turn; one that fails says why and the others go on."""
    results = []
    for key in keys:
        try:
            results.append(Fetched(key, fetch(key, checkpoint_dir)))
        except UserFacingError as err:
            results.append(Fetched(key, None, err.message_en))
        except Exception as err:  # the hub's and urllib's errors, in a user's words, then what to do
            from explorer.core.weights import download_instructions

            howto = download_instructions(get_entry(key), checkpoint_dir)[0]
            results.append(Fetched(key, None, f"{_why(err)}. {howto}"))
    return results


def _why(err: Exception) -> str:
    from huggingface_hub import constants

    from explorer.core.weights import hub_reason

    name = type(err).__name__
    if constants.HF_HUB_OFFLINE and name in ("LocalEntryNotFoundError", "OfflineModeIsEnabled"):
        return f"downloads are off (HF_HUB_OFFLINE=1) and it is not in the Hugging Face cache ({name})"
    return f"{hub_reason(name)[0]} ({name})"
