#!/usr/bin/env bash
# The main job: set up .venv/ and evaluate the shipped lite0 agent on the photos that
# ship with scikit-image (no files outside the repository needed). Extra arguments are
# passed to `adacompress evaluate` and replace these defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$#" -eq 0 ]; then
  set -- --backend lite0 --images builtin --json out/builtin-lite0.json
fi
exec .venv/bin/adacompress evaluate "$@"
