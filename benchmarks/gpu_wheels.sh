#!/usr/bin/env bash
# Download exactly the wheels benchmarks/gpu_proof.py needs on the lent GPU machine into .whl/,
# and check that the working tree plus .whl/ stays under the 64 MiB that travels.
#
# The GPU image (../shared/GPU.md, 2026-11) has Python 3.12, torch 2.11 (CUDA 13), transformers
# 5.17, peft 0.21, accelerate 1.15, nvidia-ml-py, pytest, rich, pandas, pyarrow, xxhash, fsspec,
# huggingface-hub; it lacks trl, datasets (+ dill, multiprocess), bitsandbytes, platformdirs.
# transformers and tokenizers travel too, pinned to the versions this tree is tested with
# (5.17 on the image predates the TRL 1.16 / transformers 5.24 stack the runner is built on).
# liger-kernel is the plan's Liger lever (pure Python + Triton, which torch brings).
#
# Not carried, on purpose: textual / textual-plot (the wizard; replay never imports them),
# gguf (only the embedded default model's conversion), datasketch + scipy (near-duplicate
# curation, which the proof's sessions turn off: random letters have no near-duplicates, and
# scipy alone is 35 MB), matplotlib (the report's loss-curve PNG is skipped without it),
# rouge-score / sacrebleu (the proof evaluates with exact_match).
# tests/cli/test_gpu_proof.py's dry run and a replay under benchmarks/README.md's "image check"
# (those modules blocked) show that nothing else is imported.
#
#   benchmarks/gpu_wheels.sh            # download into .whl/ and check the size
#   benchmarks/gpu_wheels.sh --check    # only check the size of what is there
#   benchmarks/gpu_wheels.sh --no-liger # leave liger-kernel out (the plan then says Liger is off)
set -euo pipefail
cd "$(dirname "$0")/.."

LIMIT=$((64 * 1024 * 1024))
WHEELS=(
  trl==1.16.0
  datasets==5.2.0
  dill==0.4.1
  multiprocess==0.70.19
  bitsandbytes==0.50.2
  platformdirs==4.14.9
  transformers==5.24.0
  tokenizers==0.23.3
)
LIGER=liger-kernel==0.8.5
check_only=0
for arg in "$@"; do
  case "$arg" in
    --check) check_only=1 ;;
    --no-liger) LIGER="" ;;
    *) echo "usage: $0 [--check] [--no-liger]" >&2; exit 2 ;;
  esac
done
[ -n "$LIGER" ] && WHEELS+=("$LIGER")

grep -qxF "/.whl/" .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo "/.whl/" >> .git/info/exclude; }

if [ "$check_only" = 0 ]; then
  rm -rf .whl
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d .whl "${WHEELS[@]}"
fi

# What travels: tracked files + untracked files git does not ignore + the carried .whl/.
# (stat skips files deleted in the work tree but still in the index)
tree=$( (git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null \
  || true) | awk '{s += $1} END {print s + 0}')
whl=$(find .whl -type f -name '*.whl' -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}')
total=$((tree + whl))
echo "wheels in .whl/:"
find .whl -type f -name '*.whl' -printf '  %f  %s\n' | sort
printf 'tree %.1f MiB + wheels %.1f MiB = %.1f MiB of the 64 MiB that travels\n' \
  "$(echo "$tree / 1048576" | bc -l)" "$(echo "$whl / 1048576" | bc -l)" \
  "$(echo "$total / 1048576" | bc -l)"
if [ "$total" -ge "$LIMIT" ]; then
  echo "too big: leave liger-kernel out (--no-liger) or carry fewer wheels" >&2
  exit 1
fi
