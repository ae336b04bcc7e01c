"""One bounded cache of lens results for the whole app, keyed by (lens, model shown, weights,
image digest, geometry): a slider, a click or a language switch redraws from here and never
re-runs a model; a new image or model runs it once."""

from __future__ import annotations

import os
from typing import Callable, TypeVar

from explorer.core.cache import LRUCache
from explorer.core.checkpoints import Card
from explorer.core.images import LoadedImage
from explorer.core.weights import LoadedModel, get_model

T = TypeVar("T")

RESULTS: LRUCache = LRUCache(
    max_items=32, max_bytes=int(os.environ.get("EXPLORER_RESULT_CACHE_MB", "768")) * 2**20)


def cached_analysis(lens: str, image: LoadedImage, model_key: str, geometry: str,
                    allow_download: bool,
                    compute: Callable[[LoadedModel, LoadedImage, str], T], weights_file: str | None = None,
                    card: Card | None = None) -> tuple[LoadedModel, T]:
    """``compute(loaded, image, geometry)`` for this lens, from the cache when it is there (a
    user's ``weights_file`` and ``card`` are part of the weights' identity, ``weights_id``)."""
    loaded = get_model(model_key, weights_file=weights_file, allow_download=allow_download, card=card)
    key = (lens, loaded.shown.key, loaded.weights_id, image.digest, geometry)
    return loaded, RESULTS.get_or_create(key, lambda: compute(loaded, image, geometry))
