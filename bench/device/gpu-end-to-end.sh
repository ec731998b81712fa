#!/usr/bin/env bash
# The default profile (the full recipe: ResNet101-FPN at 512) end to end on a GPU through webgpu, on a bounded
# budget: every stage from the data to the stage-1 test submission, in a workspace of its own (a clone of this
# repository at its current commit with the real data linked in, as results/reproduce.sh does), then the
# per-step time of each phase and the validation score gathered into OUT/end-to-end.json. From the repository
# root, with `npm ci` done (the optional `webgpu` package installed) and the data beside it:
#   bash bench/device/gpu-end-to-end.sh [OUT]      # STEPS (per epoch, default 25) and DSB2018_DATA override
# RUNNER_ARGS adds runner flags after these (a later --set wins): e.g. RUNNER_ARGS='--profile quick --set
# train.backend=wasm' tries the script's plumbing on a machine without a GPU in minutes.
# Budget: phases of 2, 1 and 1 epochs of STEPS steps, validation on 20 images per epoch; the predict and
# evaluate stages see the whole validation split and the 65 test images. The scores of so short a training
# say the path works on the GPU, not what the recipe reaches.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
out=${1:-${OUT:-$(mktemp -d)}}
mkdir -p "$out"
steps=${STEPS:-25}
data=${DSB2018_DATA:-$repo/../shared/data/dsb2018}
[ -d "$data/stage1_train" ] || { echo "gpu-end-to-end: no DSB2018 data at $data (set DSB2018_DATA)" >&2; exit 2; }
workspace=$(mktemp -d)
git clone -q "$repo" "$workspace"
ln -s "$repo/node_modules" "$workspace/node_modules"
mkdir -p "$workspace/data"
ln -s "$(cd "$data" && pwd)" "$workspace/data/dsb2018"
cd "$workspace"
started=$(date +%s)
set +e
node bin/runner.js run pipelines/dsb2018.yaml --set train.backend=webgpu --set phase1.epochs=2 \
  --set phase2.epochs=1 --set phase3.epochs=1 --set train.steps_per_epoch="$steps" --set train.max_val=20 \
  ${RUNNER_ARGS:-} > "$out/run.log" 2>&1
status=$?
set -e
seconds=$(( $(date +%s) - started ))
reports=build/dsb2018/reports
node -e '
const fs = require("fs");
const [reports, status, seconds, out] = process.argv.slice(1);
const read = (name) => { try { return JSON.parse(fs.readFileSync(`${reports}/${name}.json`, "utf8")); } catch { return undefined; } };
const phases = Object.fromEntries(["phase1", "phase2", "phase3"].map((p) => [p, read(p)]));
const evaluation = read("evaluate");
const summary = { exitStatus: Number(status), seconds: Number(seconds), phases, validation: evaluation && { score: evaluation.score, modalities: evaluation.modalities }, predict: read("predict"), predictTest: read("predict-test") };
fs.writeFileSync(`${out}/end-to-end.json`, JSON.stringify(summary, null, 1) + "\n");
console.log(JSON.stringify({ exitStatus: summary.exitStatus, seconds: summary.seconds, score: summary.validation?.score }));
' "$reports" "$status" "$seconds" "$out"
cp build/dsb2018/submission.csv "$out/stage1_test_submission.csv" 2>/dev/null || true
tail -n 5 "$out/run.log"
exit "$status"
