"""Twins lens: locally-grouped (LSA) windows, global sub-sampled (GSA) keys and the PEG."""

from timm.models.twins import GlobalSubSampleAttn, LocallyGroupedAttn

from explorer.lenses.contract import Lens, has_module


def reads_twins(model) -> bool:
    return has_module(model, LocallyGroupedAttn, GlobalSubSampleAttn)


LENS = Lens("twins", reads_twins, summary="LSA/GSA probabilities and geometry, PEG norms")
