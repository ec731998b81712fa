#!/usr/bin/env bash
# Scores one checkpoint of a running (or stopped) cpu-profile training on the validation ids, without waiting
# for the pipeline's phases to end: predict -> postprocess -> evaluate with the cpu profile's inference and
# post-processing params, into a folder of its own. Run it in the workspace of results/reproduce.sh.
#   results/evaluate-checkpoint.sh <checkpoint dir> <out dir> [stage1_test folder] [-- extra predict flags]
# e.g. results/evaluate-checkpoint.sh build/dsb2018/checkpoints/phase1/best build/eval-phase1
#      results/evaluate-checkpoint.sh build/dsb2018/checkpoints/phase1/best build/eval-no-zoom -- --small-nuclei none
# With a stage1_test folder it also writes <out>/stage1_test_submission.csv (Kaggle format) for that model and
# overlays of the test images of the hardest modalities. DSB2018_BUILD names the workspace's build folder
# (default build/dsb2018), so a newer checkout can score a checkpoint of a run that is still training elsewhere.
set -euo pipefail
usage='usage: results/evaluate-checkpoint.sh <checkpoint dir> <out dir> [stage1_test folder] [-- extra predict flags]'
checkpoint=${1:?$usage}
out=${2:?$usage}
shift 2
test_images=
if [ $# -gt 0 ] && [ "$1" != -- ]; then test_images=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" = -- ]; then shift; fi
build=${DSB2018_BUILD:-build/dsb2018}
data=$build/prepared
ids=$build/split/val.txt
# The cpu profile's values (pipelines/dsb2018.yaml, profiles.cpu.predict and params.postprocess), then any
# extra flags (a flag given twice takes its last value, so extras override the profile's).
predict=(--tta hflip --scale-down-retry true --mask-threshold 0.5 --min-confidence 0.5 --small-nuclei tile
  --small-nuclei-diameter 24 --backend wasm "$@")
post=(--min-area 10 --fill-holes true --closing true --remove-overlap true --pieces largest)
mkdir -p "$out"
node bin/dsb2018.js predict --checkpoint "$checkpoint" --data "$data" --ids "$ids" "${predict[@]}" \
  --out "$out/predictions" --metrics "$out/predict.json"
node bin/dsb2018.js postprocess --in "$out/predictions" --out "$out/postprocessed" "${post[@]}"
node bin/dsb2018.js evaluate --pred "$out/postprocessed" --truth "$data" --ids "$ids" --overlays "$out/overlays" \
  --metrics "$out/evaluate.json"
if [ -n "$test_images" ]; then
  node bin/dsb2018.js predict --checkpoint "$checkpoint" --images "$test_images" "${predict[@]}" \
    --out "$out/test-predictions" --metrics "$out/predict-test.json"
  node bin/dsb2018.js postprocess --in "$out/test-predictions" --out "$out/test-postprocessed" "${post[@]}"
  node bin/dsb2018.js evaluate --submission-only --pred "$out/test-postprocessed" --submission "$out/stage1_test_submission.csv" \
    --images "$test_images" --classes "$test_images/../classes.csv" --overlays "$out/test-overlays" \
    --overlay-modalities purpleyellow,purplewhite,purplepurple
fi
node -e "const m = require(process.argv[1]); console.log('validation score', m.score.toFixed(3), JSON.stringify(Object.fromEntries(Object.entries(m.modalities ?? {}).map(([k, v]) => [k, typeof v === 'object' ? v.score : v]))))" "$(cd "$out" && pwd)/evaluate.json"
