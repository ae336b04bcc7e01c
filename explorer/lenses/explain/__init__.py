"""Explanation lens: class-specific relevance maps (attention, rollout, GAE, Grad-CAM, a random
baseline) side by side, measured on the image by deletion/insertion and the sanity check."""

from timm.models.vision_transformer import VisionTransformer

from explorer.lenses.contract import Lens


def reads_explainable(model) -> bool:
    """timm ``VisionTransformer``s that classify from a CLS token (the maps are its row)."""
    return (isinstance(model, VisionTransformer) and getattr(model, "cls_token", None) is not None
            and getattr(model, "global_pool", "token") == "token" and getattr(model, "num_classes", 0) > 0)


LENS = Lens("explain", reads_explainable,
            summary="relevance maps side by side (attention, rollout, GAE, Grad-CAM, random), deletion/insertion")
