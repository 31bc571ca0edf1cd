#!/usr/bin/env bash
# The main job: installs what is missing (Debian packages), builds, and runs the quick survey
# (peftbench survey: fetches the data if missing, pretrains the default backbone once, runs every
# method on four real tasks, writes survey-quick/table.md and survey-quick/figures/). Arguments go
# to `peftbench survey` (e.g. --preset smoke for a seconds-long offline run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
./build/peftbench survey "$@"
