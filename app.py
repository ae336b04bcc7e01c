"""ViT Explorer: run `python app.py` and open the printed address."""

import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Uploads go to a folder of this app's own, in the user's cache (not a shared, guessable /tmp
# path), cleaned as they age (see explorer.ui.page).
_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
os.environ.setdefault("GRADIO_TEMP_DIR", str(_CACHE / "vit-explorer" / "uploads"))

from explorer.ui.page import build_demo, launch_kwargs, prepare_server  # noqa: E402

prepare_server()
demo = build_demo()

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
