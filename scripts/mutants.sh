#!/usr/bin/env bash
# Mutation testing (mutmut) of the modules whose figures users act on, each against only its
# own fast tests. Run by hand, not in CI: minutes to an hour per module on a 2-core machine.
#
#   scripts/mutants.sh                 # every module below, one after another
#   scripts/mutants.sh atomic dedup    # just these
#
# Each module runs in its own scratch copy of the repository ($MUTANTS_WORK/NAME), with
# [tool.mutmut] from pyproject.toml plus that module's only_mutate and test selection. Results
# land in $MUTANTS_OUT: NAME.stats.json (mutmut's counts), NAME.survivors.txt (each surviving
# mutant and its diff) and summary.tsv (module, killed, survived, no tests, timeout, total,
# score). Needs the mutants extra: scripts/install.sh mutants, or pip install -e '.[mutants]'.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
MUTMUT="$(dirname "$PY")/mutmut"
WORK="${MUTANTS_WORK:-${TMPDIR:-/tmp}/tuitune-mutants}"
OUT="${MUTANTS_OUT:-$WORK/results}"
JOBS="${MUTANTS_JOBS:-2}"

# module name | file to mutate | its fast tests (pytest arguments); the largest last
MODULES=(
  "recommend|tuitune/core/recommend.py|tests/test_recommend.py tests/test_faults_recommend.py"
  "evaluation|tuitune/core/evaluation.py|tests/test_eval_stats.py tests/test_faults_eval.py"
  "forgetting|tuitune/core/forgetting.py|tests/test_mixture_effect.py"
  "atomic|tuitune/core/atomic.py|tests/test_faults_atomic.py tests/test_sessions.py"
  "dedup|tuitune/core/data/dedup.py|tests/test_faults_dedup.py tests/test_data_curation.py -k not+token_length"
  "pii|tuitune/core/data/pii.py|tests/test_data_curation.py -k not+token_length"
  "estimate|tuitune/core/estimate.py|tests/test_estimate.py tests/test_faults_estimate.py -k not+runner"
)

[[ -x "$MUTMUT" ]] || {
  echo "mutmut not found next to $PY: install the mutants extra (pip install -e '.[mutants]')" >&2
  exit 2
}

wanted=("$@")
selected() {
  [[ ${#wanted[@]} -eq 0 ]] && return 0
  local w
  for w in "${wanted[@]}"; do [[ "$w" == "$1" ]] && return 0; done
  return 1
}

mkdir -p "$OUT"
[[ -f "$OUT/summary.tsv" ]] ||
  printf 'module\tkilled\tsurvived\tno_tests\ttimeout\ttotal\tscore\tdate\n' >"$OUT/summary.tsv"

for entry in "${MODULES[@]}"; do
  IFS='|' read -r name file tests <<<"$entry"
  selected "$name" || continue
  dir="$WORK/$name"
  echo "== $name: mutating $file against $tests ($(date -u +%H:%M:%S) UTC)"
  rm -rf "$dir"
  mkdir -p "$dir"
  (cd "$ROOT" && tar --exclude=__pycache__ -cf - tuitune tests assets benchmarks pyproject.toml) |
    tar -xf - -C "$dir"
  # The module's own config: the shared [tool.mutmut] plus only_mutate and its tests.
  # (a "+" in the table's test arguments stands for a space: "-k not+x" is -k "not x")
  "$PY" - "$dir/pyproject.toml" "$file" "$tests" <<'EOF'
import json, re, sys, tomllib
path, target, tests = sys.argv[1], sys.argv[2], sys.argv[3].split()
text = open(path, encoding="utf-8").read()
conf = tomllib.loads(text).get("tool", {}).get("mutmut", {})
args = [a.replace("+", " ") for a in tests]
conf.update(only_mutate=[target], pytest_add_cli_args_test_selection=args,
            use_git_change_detection=False)
text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text).rstrip() + "\n\n[tool.mutmut]\n"
text += "".join(f"{k} = {json.dumps(v)}\n" for k, v in conf.items())
open(path, "w", encoding="utf-8").write(text)
EOF
  log="$OUT/$name.log"
  if ! (cd "$dir" && OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
    "$MUTMUT" run --max-children "$JOBS" >"$log" 2>&1); then
    echo "   mutmut run failed: see $log" >&2
    tail -20 "$log" >&2
    continue
  fi
  (cd "$dir" && "$MUTMUT" export-cicd-stats >/dev/null && cp mutants/mutmut-cicd-stats.json "$OUT/$name.stats.json")
  # Every mutant that was not killed, with its diff (one process; `mutmut show` is one each).
  (cd "$dir" && "$PY" - >"$OUT/$name.survivors.txt") <<'EOF'
from mutmut.configuration import config
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

config()
for path in walk_mutatable_files():
    data = SourceFileMutationData(path=path)
    data.load()
    for key, code in sorted(data.exit_code_by_key.items()):
        status = status_by_exit_code[code]
        if status not in ("killed", "timeout", "caught by type check"):
            print(f"### {key} ({status})")
            print(get_diff_for_mutant(key, path=path), end="\n\n")
EOF
  "$PY" - "$OUT/$name.stats.json" "$name" >>"$OUT/summary.tsv" <<'EOF'
import datetime, json, sys
s = json.load(open(sys.argv[1]))
tested = s["total"] - s["skipped"]
score = 100.0 * (s["killed"] + s["timeout"]) / tested if tested else 0.0
print(sys.argv[2], s["killed"], s["survived"], s["no_tests"], s["timeout"], s["total"],
      f"{score:.1f}%", datetime.date.today().isoformat(), sep="\t")
EOF
  tail -1 "$OUT/summary.tsv"
done
echo "results: $OUT (summary.tsv, NAME.survivors.txt)"
