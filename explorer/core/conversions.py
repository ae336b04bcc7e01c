"""Checkpoints of the architectures timm lacks, read and converted with the app's loader (kept
here so that ``explorer.models`` depends on torch and timm alone): an official CrossFormer v1
state dict loaded strictly, and a DPB checkpoint turned into fixed RPB tables."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import torch
from torch import nn

from explorer.core.devices import device_of
from explorer.core.weights import WeightsError, load_into, read_state_dict
from explorer.models.crossformer import create_crossformer, dpb_to_rpb

__all__ = ["load_official_state_dict", "convert_checkpoint"]


def load_official_state_dict(model: nn.Module, state: dict[str, Any],
                             name: str = "checkpoint") -> nn.Module:
    """Load an official CrossFormer v1 state dict (or ours; weights under ``model`` are
    unwrapped) strictly: only the official constant buffers may be extra. Any other missing,
    unexpected or wrong-shaped key raises ``WeightsError`` naming it."""
    for container in ("model", "state_dict", "module"):
        if isinstance(state.get(container), dict):
            state = state[container]
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)][:5]
    if bad:
        raise WeightsError(f"{name}: entries that are not tensors: {bad}",
                           f"{name}：以下条目不是张量：{bad}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    load_into(model, state, name)
    return model


def convert_checkpoint(in_path: str | os.PathLike, out_path: str | os.PathLike,
                       config_name_or_model: str | nn.Module, images: torch.Tensor,
                       device: torch.device | None = None) -> float:
    """Read a DPB CrossFormer checkpoint (official .pth with its buffers, or ours), convert it
    to fixed RPB tables, save that as safetensors, reload it, and return max |Δlogit| between
    the DPB model and the reloaded RPB model on ``images``.

    A config name builds the official config with ``num_classes`` taken from the file, on
    ``device`` (default: the CPU); a model instance is used as the architecture, where it is (it is
    copied, never modified)."""
    from safetensors.torch import save_file


    state = read_state_dict(in_path)
    if any(k.endswith("relative_position_bias_table") for k in state):
        raise WeightsError(f"{os.fspath(in_path)} already holds RPB tables; nothing to convert.",
                           f"{os.fspath(in_path)} 已经是 RPB 表，无需转换。")
    if isinstance(config_name_or_model, str):
        head = state.get("head.weight")
        kwargs = {"num_classes": head.shape[0] if head is not None else 0}
        dpb = create_crossformer(config_name_or_model, **kwargs).to(device or "cpu")
    else:
        dpb = copy.deepcopy(config_name_or_model)
    load_official_state_dict(dpb, state, os.path.basename(in_path))
    dpb.eval()
    rpb = dpb_to_rpb(dpb)
    tensors = {k: v.detach().contiguous().cpu() for k, v in rpb.state_dict().items()}
    config = getattr(dpb, "config", {})
    metadata = {"format": "crossformer-v1-rpb", "config": json.dumps(config, default=str)}
    save_file(tensors, os.fspath(out_path), metadata=metadata)

    reloaded = dpb_to_rpb(dpb)
    with torch.no_grad():  # wipe it, so the comparison proves the file carries everything
        for tensor in reloaded.state_dict().values():
            tensor.zero_()
    load_official_state_dict(reloaded, read_state_dict(out_path), os.path.basename(out_path))
    reloaded.eval()
    images = images.to(device_of(dpb))
    with torch.inference_mode():
        want, got = dpb(images), reloaded(images)
    return float((want - got).abs().max())
