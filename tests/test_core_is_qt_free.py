"""`core` must stay importable and usable headless: no Qt, pyqtgraph or vispy anywhere in it."""

import ast
import json
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"
GUI_PACKAGES = ("PySide6", "PySide2", "PyQt4", "PyQt5", "PyQt6", "pyqtgraph", "vispy", "shiboken6")
OPTIONAL_EXTRAS = ("smplx",)  # `pip install -e .[smpl]`; a core module may need it


def _is_gui(module: str) -> bool:
    return module.split(".")[0] in GUI_PACKAGES


def test_core_source_imports_no_gui_package():
    offenders = []
    files = sorted(CORE.rglob("*.py"))
    assert files, f"no Python files under {CORE}"
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{path.relative_to(CORE.parent)}:{node.lineno}: {n}"
                          for n in names if _is_gui(n)]
    assert not offenders, "core/ imports GUI packages:\n" + "\n".join(offenders)


def test_importing_core_loads_no_gui_package():
    """Import `core` and every module in it in a fresh interpreter, then look at sys.modules."""
    script = f"""
import importlib, json, pkgutil, sys
import core
failed = {{}}
for info in pkgutil.walk_packages(core.__path__, "core."):
    try:
        importlib.import_module(info.name)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in {OPTIONAL_EXTRAS!r}:
            failed[info.name] = repr(exc)
    except Exception as exc:
        failed[info.name] = repr(exc)
gui = sorted(m for m in sys.modules if m.split(".")[0] in {GUI_PACKAGES!r})
print(json.dumps({{"gui": gui, "failed": failed}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=CORE.parent, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["gui"] == [], f"importing core loaded GUI modules: {result['gui']}"
    assert result["failed"] == {}, f"core modules that do not import: {result['failed']}"
