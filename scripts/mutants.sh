#!/usr/bin/env bash
# Mutation testing (mutmut) of the modules whose figures users act on, each against only its
# own fast tests. Run by hand, not in CI: minutes to an hour per module on a 2-core machine.
#
#   scripts/mutants.sh                 # every module below, one after another
#   scripts/mutants.sh atomic dedup    # just these
#   MUTANTS_MINUTES=15 scripts/mutants.sh estimate   # stop a module after 15 minutes
#   MUTANTS_KEEP=1 scripts/mutants.sh estimate       # reuse the last copy's generated mutants
#
# Each module runs in its own scratch copy of the repository ($MUTANTS_WORK/NAME), with
# [tool.mutmut] from pyproject.toml plus that module's only_mutate and test selection. The
# scope column limits a module to the functions that compute its figures (mutmut name globs;
# "all" = every function); MUTANTS_ALL=1 mutates every function of every module. Results land
# in $MUTANTS_OUT: NAME.survivors.txt (each mutant not killed, with its diff), NAME.log and
# summary.tsv (killed, survived, no tests, not checked, score = killed / checked).
# Needs the mutants extra: scripts/install.sh test,mutants (or pip install -e '.[mutants]').
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
MUTMUT="$(dirname "$PY")/mutmut"
WORK="${MUTANTS_WORK:-${TMPDIR:-/tmp}/tuitune-mutants}"
OUT="${MUTANTS_OUT:-$WORK/results}"
JOBS="${MUTANTS_JOBS:-2}"
MINUTES="${MUTANTS_MINUTES:-0}"

# name | file to mutate | its fast tests (pytest arguments; "+" stands for a space) | scope
# recommend(): its checklist's reason strings make most of its ~860 mutants; the verdicts it
# acts on are verdict/_fits/needed_bytes/device_capacity/what_fits, mutated in full.
MODULES=(
  "atomic|tuitune/core/atomic.py|tests/runs/test_faults_atomic.py tests/training/test_sessions.py|all"
  "dedup|tuitune/core/data/dedup.py|tests/data/test_faults_dedup.py tests/data/test_data_curation.py -k not+token_length|all"
  "pii|tuitune/core/data/pii.py|tests/data/test_faults_pii.py tests/data/test_data_curation.py -k not+token_length|all"
  "forgetting|tuitune/core/evaluation/forgetting.py|tests/evaluation/test_mixture_effect.py tests/evaluation/test_faults_forgetting.py|all"
  "evaluation|tuitune/core/evaluation/scoring.py|tests/evaluation/test_eval_stats.py tests/evaluation/test_faults_eval.py|*x_paired_bootstrap* *x_compare* *x_finalize* *x__per_example_mean* *x__agg_w* *x__mean* *Comparison*verdict*"
  "recommend|tuitune/core/hardware/recommend.py|tests/hardware/test_recommend.py tests/hardware/test_faults_recommend.py|*x_verdict* *x__fits* *x_needed_bytes* *x_device_capacity* *x_what_fits* *x_largest_fitting* *x__memory_setup*"
  "estimate|tuitune/core/hardware/estimate.py|tests/hardware/test_estimate.py tests/hardware/test_faults_estimate.py -k not+runner|*x_estimate* *x__optimizer_bytes* *x__weight_bytes* *x__trainable* *x__trainable_dtype_bytes* *x__trainable_tensor_sizes* *x__compute_bytes* *MemoryEstimate*fits*"
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
  printf 'module\tkilled\tsurvived\tno_tests\tnot_checked\tin_scope\tscore\tdate\tscope\n' >"$OUT/summary.tsv"

for entry in "${MODULES[@]}"; do
  IFS='|' read -r name file tests scope <<<"$entry"
  selected "$name" || continue
  [[ "${MUTANTS_ALL:-0}" == 1 ]] && scope=all
  dir="$WORK/$name"
  echo "== $name: mutating $file ($scope) against $tests ($(date -u +%H:%M:%S) UTC)"
  if [[ "${MUTANTS_KEEP:-0}" == 1 && -d "$dir/mutants" ]]; then
    echo "   keeping $dir: its mutants and test stats are reused (generation is skipped)"
  else
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$ROOT" && tar --exclude=__pycache__ -cf - tuitune tests assets benchmarks pyproject.toml) |
      tar -xf - -C "$dir"
  fi
  # The module's own config: the shared [tool.mutmut] plus only_mutate and its tests.
  "$PY" - "$dir/pyproject.toml" "$file" "$tests" <<'EOF'
import json, re, sys, tomllib
path, target, tests = sys.argv[1], sys.argv[2], sys.argv[3].split()
text = open(path, encoding="utf-8").read()
conf = tomllib.loads(text).get("tool", {}).get("mutmut", {})
conf.update(
    only_mutate=[target],
    pytest_add_cli_args_test_selection=[a.replace("+", " ") for a in tests],
    use_git_change_detection=False,
)
text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text).rstrip() + "\n\n[tool.mutmut]\n"
text += "".join(f"{k} = {json.dumps(v)}\n" for k, v in conf.items())
open(path, "w", encoding="utf-8").write(text)
EOF
  globs=()
  [[ "$scope" == all ]] || read -r -a globs <<<"$scope"
  limit=()
  [[ "$MINUTES" != 0 ]] && limit=(timeout -s INT -k 60 "${MINUTES}m")
  log="$OUT/$name.log"
  rc=0
  (cd "$dir" && OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
    "${limit[@]}" "$MUTMUT" run --max-children "$JOBS" "${globs[@]}" >"$log" 2>&1) || rc=$?
  # 124: the time limit's SIGINT ended it; 137: mutmut ignored that and was killed a minute
  # later. Either way the verdicts so far are saved, one mutant at a time.
  [[ "$MINUTES" != 0 && $rc -eq 137 ]] && rc=124
  if [[ $rc -ne 0 && $rc -ne 124 ]] && ! grep -q "mutations/second" "$log"; then
    echo "   mutmut run failed (exit $rc): see $log" >&2
    tail -5 "$log" >&2
    continue
  fi
  [[ $rc -eq 124 ]] && echo "   stopped after $MINUTES minutes: the rest is 'not checked'"
  # Every mutant in scope that was not killed, with its diff, and the module's counts.
  (cd "$dir" && "$PY" - "$OUT/$name.survivors.txt" "$name" "$scope" >>"$OUT/summary.tsv") <<'EOF'
import collections, datetime, fnmatch, sys
from mutmut.configuration import config
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

out, name, scope = sys.argv[1], sys.argv[2], sys.argv[3]
globs = None if scope == "all" else scope.split()
config()
counts = collections.Counter()
with open(out, "w", encoding="utf-8") as f:
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for key, code in sorted(data.exit_code_by_key.items()):
            if globs and not any(fnmatch.fnmatch(key, g) for g in globs):
                continue
            status = status_by_exit_code[code]
            if status in ("killed", "timeout", "caught by type check"):
                status = "killed"
            counts[status] += 1
            if status != "killed" and status != "not checked":
                f.write(f"### {key} ({status})\n{get_diff_for_mutant(key, path=path)}\n\n")
checked = counts["killed"] + counts["survived"] + counts["no tests"]
score = f"{100 * counts['killed'] / checked:.1f}%" if checked else "-"
print(name, counts["killed"], counts["survived"], counts["no tests"], counts["not checked"],
      sum(counts.values()), score, datetime.date.today().isoformat(), scope, sep="\t")
EOF
  tail -1 "$OUT/summary.tsv" | cut -f1-7
done
echo "results: $OUT (summary.tsv, NAME.survivors.txt)"
