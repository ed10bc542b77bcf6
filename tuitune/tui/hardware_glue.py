"""Presentation of the hardware helper's core results (probe, estimate, recommend, catalog).

Only formatting lives here: every number comes from ``tuitune.core.probe``, ``estimate``,
``recommend`` and ``model_catalog``. Until those modules exist the functions raise, and the
screens say the figures are unavailable.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from tuitune.core.errors import TuituneError


def _missing(module: str) -> TuituneError:
    return TuituneError(f"{module} is not available in this build")


def probe_all(probe_kwargs: dict[str, Any], session: Any) -> tuple[Any, list[Any], Any]:
    try:
        from tuitune.core import probe, recommend  # noqa: F401
    except ImportError:
        raise _missing("tuitune.core.probe") from None
    raise _missing("tuitune.core.probe")


def hardware_summary(hw: Any) -> Text:
    return Text(str(hw))


def device_rows(hw: Any) -> tuple[list[str], list[list[str]]]:
    return ["device"], []


def fit_rows(fits: list[Any]) -> tuple[list[str], list[list[Any]]]:
    return ["method"], []


def recommendation_text(rec: Any) -> Text:
    return Text(str(rec or ""))


def recommendation_answers(rec: Any) -> dict[str, Any]:
    return {}


def recommended_spec(rec: Any) -> dict[str, Any]:
    return {}


def catalog_rows(app: Any, method: str) -> list[tuple[str, str, str, str]]:
    try:
        from tuitune.core import model_catalog  # noqa: F401
    except ImportError:
        raise _missing("tuitune.core.model_catalog") from None
    return []


def estimate_for_spec(app: Any, spec: dict[str, Any]) -> Text:
    try:
        from tuitune.core import estimate  # noqa: F401
    except ImportError:
        raise _missing("tuitune.core.estimate") from None
    return Text("")
