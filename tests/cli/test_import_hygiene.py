"""The core, runner and replay never import textual; the CLI's start path imports nothing heavy."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import tuitune

HEAVY = ("torch", "transformers", "trl", "peft", "datasets", "textual")


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return {m.split(".")[0] for m in json.loads(out.strip().splitlines()[-1])}


def _modules(package: str) -> list[str]:
    pkg = __import__(package, fromlist=["_"])
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        names.append(info.name)
    return names


@pytest.mark.parametrize("package", ["tuitune.core", "tuitune.runner"])
def test_core_and_runner_never_import_textual(package: str) -> None:
    for name in _modules(package):
        if name.endswith("__main__"):
            continue
        loaded = _loaded_after(f"import {name}")
        assert "textual" not in loaded, f"{name} imports textual"


def test_core_modules_import_no_heavy_library_at_module_level() -> None:
    names = [n for n in _modules("tuitune.core")]
    loaded = _loaded_after("\n".join(f"import {n}" for n in names))
    assert not loaded & set(HEAVY), f"tuitune.core pulls in {sorted(loaded & set(HEAVY))}"


def test_replay_never_imports_textual() -> None:
    assert "textual" not in _loaded_after("import tuitune.replay")


def test_cli_start_path_is_light() -> None:
    loaded = _loaded_after("import tuitune.cli; tuitune.cli.build_parser()")
    assert not loaded & {"torch", "transformers", "trl", "textual"}, loaded & set(HEAVY)


def test_package_has_the_house_layout() -> None:
    root = tuitune.__path__[0]
    for sub in ("core", "runner", "tui", "commands"):
        assert (__import__("pathlib").Path(root) / sub / "__init__.py").is_file(), sub


# Where a function-local import of tuitune's own modules is deliberate, and why. Everywhere
# else tuitune imports tuitune at module level, so `lint-imports` sees the true order. (Heavy
# libraries, torch, transformers, trl, peft, datasets, bitsandbytes, stay inside the functions
# that use them outside tuitune.runner: test_core_modules_import_no_heavy_library...)
LAZY_ALLOWED = {
    "tuitune/cli.py": "a command's module is imported when it runs: `tuitune --help` stays light",
    "tuitune/commands/": "each command imports the stage it drives when it runs, not at start-up",
    "tuitune/tui/": "the wizard imports a stage on first use, so the first frame paints at once",
}


def test_no_lazy_import_of_tuitune_outside_the_front_ends() -> None:
    import ast
    from pathlib import Path

    root = Path(tuitune.__path__[0]).parent
    found = []
    for f in sorted((root / "tuitune").rglob("*.py")):
        rel = f.relative_to(root).as_posix()
        if any(rel.startswith(k) for k in LAZY_ALLOWED):
            continue
        for fn in ast.walk(ast.parse(f.read_text())):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                        "tuitune"
                    ):
                        found.append(f"{rel}:{node.lineno} {node.module}")
    assert not found, "function-local imports of tuitune (hoist them, or list why): " + str(found)
