"""Position-bias lens: Swin's relative position bias tables, SwinV2's continuous position bias
and CrossFormer's dynamic position bias, each with its exact conversion to a table (no image
needed)."""

from timm.models.swin_transformer import WindowAttention
from timm.models.swin_transformer_v2 import WindowAttention as WindowAttentionV2

from explorer.lenses.contract import Lens, has_module
from explorer.models.crossformer import CrossFormer


def reads_position_bias(model) -> bool:
    return has_module(model, WindowAttention, WindowAttentionV2) or isinstance(model, CrossFormer)


LENS = Lens("bias", reads_position_bias, inputs="model",
            summary="RPB tables; SwinV2's CPB and CrossFormer's DPB with their table equivalents")
