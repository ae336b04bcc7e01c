"""DINO lens: the last block's CLS self-attention per head, the official threshold masks, two
models side by side and the multi-crop views."""

from explorer.lenses.attention import reads_vit
from explorer.lenses.contract import Lens

LENS = Lens("dino", reads_vit, summary="last-block CLS attention per head, threshold masks")
