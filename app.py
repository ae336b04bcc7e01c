"""ViT Explorer: run `python app.py` and open the printed address."""

import logging
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Uploads go to a folder of this app's own, in the user's cache (not a shared, guessable /tmp
# path), cleaned as they age (see explorer.ui.page).
_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
os.environ.setdefault("GRADIO_TEMP_DIR", str(_CACHE / "vit-explorer" / "uploads"))

from explorer.ui.page import build_demo, launch_kwargs, prepare_server  # noqa: E402

# One line per event worth knowing: a user's bad upload is an INFO line, a bug a traceback (ERROR).
logging.basicConfig(level=os.environ.get("EXPLORER_LOG_LEVEL", "INFO"),
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
for noisy in ("httpx", "httpcore", "urllib3", "huggingface_hub"):  # a line per request otherwise
    logging.getLogger(noisy).setLevel(logging.WARNING)

prepare_server()
demo = build_demo()

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
