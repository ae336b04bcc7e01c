"""Architectures timm lacks, checkpoint-compatible with their official releases.

Importing this package registers them with timm's model registry, so the rest of the app
builds every model the same way (``timm.create_model``)."""

from explorer.models import crossformer  # noqa: F401  (registers crossformer_* with timm)
from explorer.models import navit  # noqa: F401  (registers navit with timm)
from explorer.models import mae  # noqa: F401  (registers mae_vit_* with timm)
