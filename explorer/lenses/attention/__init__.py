"""Attention lens: per layer and head, any query token's attention, rollout, mean attention
distance, position-embedding similarity and the shapes through a ViT-family model."""

from timm.models.vision_transformer import VisionTransformer

from explorer.lenses.contract import Lens


def reads_vit(model) -> bool:
    """timm ``VisionTransformer``s (ViT, DeiT and its distilled variant, DINO, DINOv2, MAE encoders)."""
    return isinstance(model, VisionTransformer)


LENS = Lens("attention", reads_vit, summary="attention per layer/head, rollout, distances, position similarity")
