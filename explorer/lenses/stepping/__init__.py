"""Step through one attention head for one query token, for every family with attention (ViT,
Swin v1/v2, CrossFormer, Twins): ``compute`` records a forward and does the arithmetic,
``figures`` draws each step, ``text`` holds its formulas in both languages. Shared by the
attention tab and the stage tabs (``explorer/ui/step_panel.py``) and by the exports' ``--step``."""

from explorer.lenses.stepping.compute import (FAMILIES, HeadStep, Recording, block_count, record, record_image,
                                              stage_layers, step_families, step_from, step_through)

__all__ = ["FAMILIES", "HeadStep", "Recording", "block_count", "record", "record_image", "stage_layers",
           "step_families", "step_from", "step_through"]
