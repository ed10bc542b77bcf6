#!/usr/bin/env bash
# README command two: install with the test extras, then run the suite (slow tests included).
# Pass pytest arguments through, e.g. scripts/test.sh -m "not slow".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh test
exec .venv/bin/python -m pytest -q "$@"
