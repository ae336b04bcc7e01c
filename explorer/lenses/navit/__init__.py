"""NaViT lens: several images packed into sequences (patch n' pack), token dropout, the
block-diagonal mask, and packed = separate."""

from explorer.lenses.contract import Lens
from explorer.models.navit import NaViT


def reads_navit(model) -> bool:
    return isinstance(model, NaViT)


LENS = Lens("navit", reads_navit, inputs="images", summary="packing of several images, masks, logits packed and alone")
