#!/usr/bin/env bash
# Reproduces RESULTS.md's cpu-profile figures: a clone of this repository at its current commit in a workspace
# of its own (so edits to the checkout never touch a run of many hours), the real data linked in as
# data/dsb2018, then the pipeline with the cpu profile and any extra arguments. Running it again resumes:
# finished stages are fresh, a killed training phase continues from its last epoch.
#   results/reproduce.sh <workspace> [runner run arguments…]     e.g. --set phase1.epochs=50
# The data folder defaults to ../shared/data/dsb2018 beside the repository (DSB2018_DATA overrides it).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
workspace=${1:?usage: results/reproduce.sh <workspace> [runner run arguments…]}
shift
data=${DSB2018_DATA:-$repo/../shared/data/dsb2018}
[ -d "$data/stage1_train" ] || { echo "reproduce: no DSB2018 data at $data (set DSB2018_DATA)" >&2; exit 2; }
[ -d "$workspace/.git" ] || git clone -q "$repo" "$workspace"
git -C "$workspace" fetch -q "$repo" HEAD
git -C "$workspace" checkout -q --detach FETCH_HEAD
cd "$workspace"
[ -d node_modules ] || npm ci --no-audit --no-fund
mkdir -p data
[ -e data/dsb2018 ] || ln -s "$(cd "$data" && pwd)" data/dsb2018
exec npx runner run pipelines/dsb2018.yaml --profile cpu "$@"
