"""Reading the JSON files tuitune itself writes (run.json, spec.json, manifests, reports).

``read_object`` is for files that may be missing or half-written while another process works
(a viewer, a report of a run that was killed): it returns ``{}`` then. Files a user hands in
(sessions, data) have strict readers of their own that name the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_object(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``, or ``{}`` when it is missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
