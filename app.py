"""ViT Explorer: run `python app.py` and open the printed address."""

import os
import tempfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Uploads go to a folder of this app's own, cleaned as they age (see explorer.ui.page).
os.environ.setdefault("GRADIO_TEMP_DIR", os.path.join(tempfile.gettempdir(), "vit-explorer"))

from explorer.ui.page import build_demo, launch_kwargs, prepare_server  # noqa: E402

prepare_server()
demo = build_demo()

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
