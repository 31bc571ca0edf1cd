#!/usr/bin/env bash
# The main job: installs what is missing (Debian packages), builds, and runs it.
# For now the main job is a short training demo on built-in text (no download); later issues
# make it the survey.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
./build/peftbench demo "$@"
