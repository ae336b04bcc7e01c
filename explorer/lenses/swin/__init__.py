"""Swin windows lens: windows and shifted windows, the cyclic shift, masks and the logit split."""

from timm.models.swin_transformer import WindowAttention
from timm.models.swin_transformer_v2 import WindowAttention as WindowAttentionV2

from explorer.lenses.contract import Lens, has_module


def reads_swin(model) -> bool:
    """Models made of timm's Swin or SwinV2 ``WindowAttention`` (the same windows and masks)."""
    return has_module(model, WindowAttention, WindowAttentionV2)


LENS = Lens("swin", reads_swin, summary="Swin and SwinV2 windows, shifted windows, masks and logits per block")
