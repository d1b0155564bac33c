#!/usr/bin/env bash
# The main job: set up .venv/ and run the deployed loop (inference-estimate-retrain)
# with lite0's default agent and the in-process lite0 cloud over the photos that ship
# with scikit-image (no files outside the repository needed). The run's state, report
# and plot go to out/run-lite0/; running it again continues (or re-reports) that run.
# Extra arguments are passed to `adacompress run` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/adacompress run "$@"
