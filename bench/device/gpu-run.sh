#!/usr/bin/env bash
# On the lent GPU (copied to .device/ by bench/device/prepare.sh): every GPU measurement of issues 4 and 9 in
# one call, each with its own time limit so one hang cannot eat the session. Results: $OUT/*.json and logs.
here=$(cd "$(dirname "$0")" && pwd)
export DAWN_NODE="$here/dawn.node"
run() { local limit=$1; shift; timeout "$limit" bash "$here/gpu-env.sh" "$@"; echo "exit $? : $*"; }
# Session 4: the conv-gradient check and the targets in their final form (earlier sections are recorded): merge the new
# sections into bench/device/webgpu-diagnose.h100.json rather than replacing it (docs/backend.md).
DIAGNOSE_ONLY=${DIAGNOSE_ONLY:-uploadCheck,fusedAdam,kernelCheck,targets} run 270 node "$here/webgpu-diagnose.mjs" > "$OUT/diagnose.log" 2>&1
run 180 node "$here/webgpu-maskrcnn.mjs" > "$OUT/maskrcnn.log" 2>&1
timeout 60 python3 "$here/torch-resnet50-step.py" > "$OUT/torch-resnet50.txt" 2>&1
timeout 60 python3 "$here/torch-unet-step.py" > "$OUT/torch-unet.txt" 2>&1
tail -n 3 "$OUT"/*.log "$OUT"/*.txt
