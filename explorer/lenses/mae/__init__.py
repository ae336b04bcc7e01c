"""MAE lens: hide patches, reconstruct them with a masked autoencoder (encoder + decoder)."""

from explorer.lenses.contract import Lens
from explorer.models.mae import MaskedAutoencoderViT


def reads_mae(model) -> bool:
    return isinstance(model, MaskedAutoencoderViT)


LENS = Lens("mae", reads_mae, summary="masks, reconstruction and the four-panel figure")
