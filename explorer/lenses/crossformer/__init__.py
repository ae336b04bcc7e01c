"""CrossFormer lens: SDA/LDA groups, a token's attention in its group, the cross-scale embedding
and the logits split into content + DPB + padding mask."""

from explorer.lenses.contract import Lens
from explorer.models.crossformer import CrossFormer


def reads_crossformer(model) -> bool:
    return isinstance(model, CrossFormer)


LENS = Lens("crossformer", reads_crossformer, summary="SDA/LDA groups, attention, content/bias/mask logits")
