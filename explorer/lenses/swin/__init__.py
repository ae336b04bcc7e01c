"""Swin windows lens: windows and shifted windows, the cyclic shift, masks and the logit split."""

from timm.models.swin_transformer import WindowAttention

from explorer.lenses.contract import Lens, has_module


def reads_swin(model) -> bool:
    """Models made of timm's Swin (v1) ``WindowAttention``."""
    return has_module(model, WindowAttention)


LENS = Lens("swin", reads_swin, summary="Swin windows, shifted windows, masks and logits per block")
