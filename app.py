"""ViT Explorer: run `python app.py` and open the printed address."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from explorer.ui.page import build_demo, launch_kwargs  # noqa: E402

demo = build_demo()

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
