"""ViT Explorer: see how vision transformers work, one lens at a time.

The package is importable without Gradio: ``explorer.core`` loads images, models and
weights and captures attention; ``explorer.lenses.*`` compute and draw; ``explorer.ui``
builds the Gradio page.
"""

__version__ = "0.1.0"
