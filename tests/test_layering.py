"""core/ is layered and every import goes down (docs/architecture.md):

1. motion maths and value types  2. formats, text, body  3. data  4. model  5. eval  6. train
7. pipeline, pipeline_eval, document, project, cli

A module may import its own layer or a lower one. Imports inside functions are for heavy
dependencies only: third-party packages (torch, transformers, scipy...), or, in the CLI modules,
the commands' own machinery so that `pgr2m` starts without loading torch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "core"

LAYERS = {
    1: ["core", "core.limits", "core.motion", "core.skeleton", "core.rotations", "core.features",
        "core.posecodes", "core.atomic", "core.cleanup"],
    2: ["core.formats", "core.text", "core.body"],
    3: ["core.data"],
    4: ["core.model"],
    5: ["core.eval"],
    6: ["core.train"],
    7: ["core.pipeline", "core.pipeline_eval", "core.timeline", "core.document", "core.project", "core.cli",
        "core.cli_*"],
}
LAZY_CORE_IMPORTS_ALLOWED = ("core.cli",)        # the CLI's command modules (core/cli*.py)


def layer_of(module: str) -> int:
    """The layer of a core module: the longest matching prefix wins (core.formats.bvh -> 2)."""
    best, best_len = None, -1
    for layer, prefixes in LAYERS.items():
        for p in prefixes:
            hit = (module.startswith(p[:-1]) if p.endswith("*")
                   else module == p or module.startswith(p + "."))
            if hit and len(p) > best_len:
                best, best_len = layer, len(p)
    if best is None:
        raise KeyError(module)
    return best


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path):
    """(line, imported core module, at module level?) for every core import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top = set()
    for node in tree.body:                      # module level, also inside if/try blocks there
        top.update(id(n) for n in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from core import posecodes" imports core.posecodes
            names = ([f"{node.module}.{a.name}" for a in node.names] if node.module == "core"
                     else [node.module])
        else:
            continue
        for n in names:
            if n == "core" or n.startswith("core."):
                yield node.lineno, n, id(node) in top


def _core_files():
    files = sorted(CORE.rglob("*.py"))
    assert files, f"no Python files under {CORE}"
    return files


def test_every_core_module_has_a_layer():
    missing = [_module_name(p) for p in _core_files() if not _try_layer(_module_name(p))]
    assert not missing, f"modules with no layer in tests/test_layering.py (add them): {missing}"


def _try_layer(module: str) -> bool:
    try:
        layer_of(module)
        return True
    except KeyError:
        return False


def test_no_lower_layer_imports_a_higher_one():
    offenders = []
    for path in _core_files():
        mod = _module_name(path)
        for line, target, _ in _imports(path):
            if _try_layer(target) and layer_of(target) > layer_of(mod):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {mod} (layer {layer_of(mod)}) imports "
                                 f"{target} (layer {layer_of(target)})")
    assert not offenders, "imports that go up a layer:\n" + "\n".join(offenders)


def test_core_imports_core_at_module_level():
    """A function-level import of our own code hides the layering; only the CLI defers its commands."""
    offenders = []
    for path in _core_files():
        mod = _module_name(path)
        if mod.startswith(LAZY_CORE_IMPORTS_ALLOWED):
            continue
        offenders += [f"{path.relative_to(ROOT)}:{line}: {target}"
                      for line, target, at_top in _imports(path) if not at_top]
    assert not offenders, "core modules importing core inside functions:\n" + "\n".join(offenders)


@pytest.mark.parametrize("module, heavy", [
    ("core.project", "torch"),          # a project file is read without torch
    ("core.document", "torch"),
    ("core.motion", "torch"),
    ("core.cli", "torch"),              # `pgr2m --help` and `pgr2m codes` start at once
])
def test_light_modules_do_not_load_heavy_packages(module, heavy):
    code = f"import sys, {module}; print({heavy!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", f"importing {module} loads {heavy}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule bites: a model module importing the pipeline is reported."""
    assert layer_of("core.model.tokenizer") == 4 and layer_of("core.pipeline") == 7
    assert layer_of("core.formats.bvh") == 2 and layer_of("core.cli_motion") == 7
    bad = tmp_path / "core" / "model" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("import numpy\n\ndef f():\n    from core.pipeline import Pipeline\n")
    found = list(_imports(bad))
    assert found == [(4, "core.pipeline", False)]
