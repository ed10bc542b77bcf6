#!/usr/bin/env bash
# README command one: install, then the wizard in a terminal, or the quickstart replay when no
# terminal is attached (CI, pipes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
if [ -t 0 ] && [ -t 1 ]; then
  exec .venv/bin/tuitune
else
  exec .venv/bin/tuitune replay assets/sessions/quickstart.json "$@"
fi
