"""The import graph: architectures at the bottom, then core, then lenses and the page; no cycles;
Gradio only in the page layer and plotly never in a lens's compute; each module imports alone."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "explorer"

# Lenses that build on another lens's pictures, by design (each says so in its docstring).
CROSS_LENS = {
    ("crossformer", "bias"),  # CrossFormer's SDA/LDA groups on the image are the bias lens's group maps
    ("crossformer", "swin"),  # the logits split into content + bias + mask uses Swin's panels
    ("dino", "attention"),  # DINO reads the same timm VisionTransformers
    ("stepping", "swin"),  # the step-through places a Swin window's keys with the Swin lens's window layout
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & set(MODULES)
            # `from package import module` needs the module, not what the package's __init__ imports
            found |= submodules or {node.module}
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "__main__.py"}


def explorer_imports(name: str, top_level_only: bool = False) -> set[str]:
    return {m for m in imports_of(MODULES[name], top_level_only) if m in MODULES}


def test_models_are_at_the_bottom():
    for name in MODULES:
        if name.startswith("explorer.models"):
            outside = {m for m in explorer_imports(name) if not m.startswith("explorer.models")}
            assert not outside, f"{name} imports {outside}: architectures depend on torch and timm only"


def test_core_never_reaches_up():
    for name in MODULES:
        if name.startswith("explorer.core"):
            up = {m for m in explorer_imports(name) if m.startswith(("explorer.lenses", "explorer.ui", "explorer.train",
                                                                      "explorer.cli"))}
            assert not up, f"{name} imports {up}"


def test_gradio_only_in_the_page_and_plotly_never_in_compute():
    for name, path in MODULES.items():
        third_party = {m.split(".")[0] for m in imports_of(path)}
        in_page = name.startswith("explorer.ui") or name.endswith(".tab")
        if not in_page:
            assert "gradio" not in third_party, f"{name} imports gradio"
        if name.endswith(".compute") or name.startswith(("explorer.core", "explorer.models")):
            assert "plotly" not in third_party, f"{name} imports plotly"


# What every lens may use: the registry and contract, exports, plotting and the step-through of
# one head (a shared piece for every tab with attention, not a lens of its own).
SHARED = ("registry", "contract", "exporting", "plotting", "stepping")


def test_lenses_share_through_core_and_plotting_not_through_each_other():
    for name in MODULES:
        parts = name.split(".")
        if len(parts) < 3 or parts[1] != "lenses" or parts[2] in SHARED[:-1]:  # (stepping's own imports: checked)
            continue
        for other in explorer_imports(name):
            bits = other.split(".")
            if len(bits) >= 3 and bits[1] == "lenses" and bits[2] not in (*SHARED, parts[2]):
                assert (parts[2], bits[2]) in CROSS_LENS, f"{name} imports the {bits[2]} lens ({other})"


def test_no_import_cycles():
    """Module-level imports only (a function may import lazily); a package's ``__init__`` importing
    its own modules is the usual pattern, not a cycle, since no explicit import goes back."""
    graph = {name: explorer_imports(name, top_level_only=True) - {name} for name in MODULES}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [name])


def test_every_module_imports_alone():
    """Each module in a fresh module table (torch and friends stay loaded, explorer.* does not)."""
    script = f"""
import importlib, sys
sys.path.insert(0, {str(ROOT)!r})
failed = []
for name in {sorted(MODULES)!r}:
    for loaded in [m for m in sys.modules if m == "explorer" or m.startswith("explorer.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as err:
        failed.append(f"{{name}}: {{type(err).__name__}}: {{err}}")
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={"HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
