"""Explanation lens: class-specific relevance maps (attention, rollout, GAE, Grad-CAM, a random
baseline) side by side, measured on the image by deletion/insertion and the sanity check."""

from timm.models.swin_transformer import SwinTransformer
from timm.models.swin_transformer_v2 import SwinTransformerV2
from timm.models.vision_transformer import VisionTransformer

from explorer.lenses.contract import Lens


def reads_explainable(model) -> bool:
    """Classifiers: timm ``VisionTransformer``s that classify from a CLS token (the maps are its
    row) and Swin/SwinV2 (Grad-CAM only: its attention is per window)."""
    if getattr(model, "num_classes", 0) <= 0:
        return False
    if isinstance(model, (SwinTransformer, SwinTransformerV2)):
        return True
    return (isinstance(model, VisionTransformer) and getattr(model, "cls_token", None) is not None
            and getattr(model, "global_pool", "token") == "token")


LENS = Lens("explain", reads_explainable,
            summary="relevance maps side by side (attention, rollout, GAE, Grad-CAM, random), deletion/insertion")
