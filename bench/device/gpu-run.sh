#!/usr/bin/env bash
# On the lent GPU (copied to .device/ by bench/device/prepare.sh): every GPU measurement of issues 4 and 9 in
# one call, each with its own time limit so one hang cannot eat the session (580 s in all). Results: $OUT/*.json,
# logs, the kernel tests' TAP output and a CPU profile of the recipe's run (bench/device/cpu-profile-top.ts reads it).
here=$(cd "$(dirname "$0")" && pwd)
export DAWN_NODE="$here/dawn.node"
run() { local limit=$1; shift; timeout "$limit" bash "$here/gpu-env.sh" "$@"; echo "exit $? : $*"; }
# Session 4: the targets in their final form and the conv-gradient check (earlier sections are recorded): merge
# the new sections into bench/device/webgpu-diagnose.h100.json rather than replacing it (docs/backend.md).
DIAGNOSE_ONLY=${DIAGNOSE_ONLY:-uploadCheck,fusedAdam,targets,kernelCheck} run 200 node "$here/webgpu-diagnose.mjs" > "$OUT/diagnose.log" 2>&1
timeout 40 python3 "$here/torch-resnet50-step.py" > "$OUT/torch-resnet50.txt" 2>&1
timeout 40 python3 "$here/torch-unet-step.py" > "$OUT/torch-unet.txt" 2>&1
run 120 node "$here/webgpu-maskrcnn.mjs" > "$OUT/maskrcnn.log" 2>&1
# Where the recipe's step spends its host time (session 6 found tfjs' NMS at a quarter of it this way).
BENCH_PROFILE=none run 60 node --cpu-prof --cpu-prof-dir="$OUT/prof" "$here/webgpu-maskrcnn.mjs" recipe-resnet101-512-b2 > "$OUT/maskrcnn-cpu-profile.log" 2>&1
xz -1 "$OUT"/prof/*.cpuprofile 2>/dev/null || true
# Everything we run on webgpu against the cpu backend (test/model/webgpu-kernels.test.ts), on the GPU this time.
(cd "$OUT" && run 120 node --test --test-reporter=tap "$here/webgpu-kernels.test.mjs" > "$OUT/webgpu-kernels-tests.tap" 2>&1)
tail -n 3 "$OUT"/*.log "$OUT"/*.txt
grep -E '^# (pass|fail)' "$OUT/webgpu-kernels-tests.tap"
