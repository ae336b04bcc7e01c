"""Position-bias lens: Swin's relative position bias tables and CrossFormer's dynamic position
bias with its exact conversion to a table (no image needed)."""

from timm.models.swin_transformer import WindowAttention

from explorer.lenses.contract import Lens, has_module
from explorer.models.crossformer import CrossFormer


def reads_position_bias(model) -> bool:
    return has_module(model, WindowAttention) or isinstance(model, CrossFormer)


LENS = Lens("bias", reads_position_bias, inputs="model", summary="RPB tables; CrossFormer DPB and its RPB equivalent")
