"""The lens contract: what the page, the CLI and the public API need to know of a lens.

A lens is one folder under ``explorer/lenses/`` holding ``compute.py`` (numpy/torch: the
analysis, a frozen result, its arrays), ``figures.py`` (plotly/PIL), ``export.py`` (the
``python -m explorer export <key>`` subcommand: ``run(args)``, and ``add_arguments(parser)`` for
flags of its own),
``tab.py`` (Gradio: ``build(ctx)`` and ``api``, the named endpoint that mirrors the export) and
one ``Lens`` in its ``__init__.py``. One line in ``registry.LENSES`` puts it on the page, in the
CLI and in the API. Which models a lens can read is decided from the model's own modules."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from torch import nn


@dataclass(frozen=True)
class Lens:
    key: str  # the folder name: tab id, `export <key>`, API endpoint `/<key>`
    reads: Callable[[nn.Module], bool]  # can this lens analyse that model (built on any device)?
    inputs: str = "image"  # what it looks at: "image", "images" (several at once) or "model" (no image)
    summary: str = ""  # one line for `python -m explorer export --help`

    def title(self, lang: str = "en") -> str:
        from explorer.ui.i18n import t  # plain-Python tables; imported late to keep this module light

        return t(f"tab_{self.key}", lang)

    @property
    def export(self) -> ModuleType:
        """The CLI half (no Gradio): ``run(args) -> int`` and, if it has flags, ``add_arguments(parser)``."""
        return importlib.import_module(f"explorer.lenses.{self.key}.export")

    @property
    def tab(self) -> ModuleType:
        """The page half (imports Gradio): ``build(ctx)`` and ``api``."""
        return importlib.import_module(f"explorer.lenses.{self.key}.tab")


def has_module(model: nn.Module, *types: type) -> bool:
    """Whether any submodule of ``model`` (or the model itself) is one of ``types``."""
    return any(isinstance(module, types) for module in model.modules())
