"""The data package stays light: no heavy library is imported until a function needs it."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "trl", "datasets", "peft", "textual", "datasketch", "pyarrow")


def test_data_modules_import_nothing_heavy() -> None:
    code = (
        "import sys, pkgutil, importlib, tuitune.core.data as d, tuitune.commands.data\n"
        "for m in pkgutil.iter_modules(d.__path__): importlib.import_module('tuitune.core.data.' + m.name)\n"
        f"print(','.join(sorted(h for h in {HEAVY!r} if h in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
