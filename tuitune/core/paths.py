"""Where tuitune keeps things: platformdirs locations, overridable with ``TUITUNE_HOME``.

``TUITUNE_HOME`` puts every directory under one root (tests, CI, portable installs).
Directories are created lazily by the code that writes into them.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "tuitune"


def _home() -> Path | None:
    value = os.environ.get("TUITUNE_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Sessions and runs live here."""
    if (home := _home()) is not None:
        return home / "data"
    from platformdirs import user_data_path

    return user_data_path(APP, appauthor=False)


def config_dir() -> Path:
    """User configuration (keymap, preferences)."""
    if (home := _home()) is not None:
        return home / "config"
    from platformdirs import user_config_path

    return user_config_path(APP, appauthor=False)


def cache_dir() -> Path:
    """Converted models and other regenerable artefacts."""
    if (home := _home()) is not None:
        return home / "cache"
    from platformdirs import user_cache_path

    return user_cache_path(APP, appauthor=False)


def sessions_dir() -> Path:
    return data_dir() / "sessions"


def runs_dir() -> Path:
    return data_dir() / "runs"


def models_cache_dir() -> Path:
    return cache_dir() / "models"


def assets_dir() -> Path:
    """Bundled assets: the repo's ``assets/`` in a checkout, else the installed copy."""
    env = os.environ.get("TUITUNE_ASSETS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "assets", here / "assets"):
        if candidate.is_dir():
            return candidate
    return here.parent / "assets"


def all_locations() -> dict[str, Path]:
    """Every directory tuitune uses, for ``tuitune locate``."""
    return {
        "config": config_dir(),
        "data": data_dir(),
        "sessions": sessions_dir(),
        "runs": runs_dir(),
        "cache": cache_dir(),
        "models": models_cache_dir(),
        "assets": assets_dir(),
    }
