#!/usr/bin/env bash
# Every GPU measurement of docs/backend.md in one go, on a machine with a GPU that Dawn can drive (Vulkan, Metal
# or D3D12), Node 20 and `npm ci` (with the optional `webgpu` package); the PyTorch peers need python3 with torch
# and torchvision. From the repository root:
#   bash bench/device/gpu-run.sh [OUT]     # results in OUT (default: a new temp folder): *.json, logs, TAP, prof/
# Each step has its own time limit so one hang cannot stop the rest. Merge the new webgpu-diagnose.json sections
# into bench/device/webgpu-diagnose.h100.json rather than replacing it (docs/backend.md).
set -u
cd "$(dirname "$0")/../.."
out=${1:-${OUT:-$(mktemp -d)}}
mkdir -p "$out"
export OUT="$out"
run() { local limit=$1; shift; timeout "$limit" "$@"; echo "exit $? : $*"; }
DIAGNOSE_ONLY=${DIAGNOSE_ONLY:-uploadCheck,fusedAdam,targets,kernelCheck} run 200 node --import tsx bench/device/webgpu-diagnose.ts > "$out/diagnose.log" 2>&1
run 40 python3 bench/device/torch_resnet50_step.py > "$out/torch-resnet50.txt" 2>&1
run 40 python3 bench/device/torch_unet_step.py > "$out/torch-unet.txt" 2>&1
run 120 node --import tsx bench/device/webgpu-maskrcnn.ts > "$out/maskrcnn.log" 2>&1
# Where the recipe's step spends its host time (read it with bench/device/cpu-profile-top.ts).
BENCH_PROFILE=none run 60 node --import tsx --cpu-prof --cpu-prof-dir="$out/prof" bench/device/webgpu-maskrcnn.ts recipe-resnet101-512-b2 > "$out/maskrcnn-cpu-profile.log" 2>&1
xz -1 "$out"/prof/*.cpuprofile 2>/dev/null || true
# Everything we run on webgpu against the cpu backend (test/model/webgpu-kernels.test.ts), on the GPU.
run 120 node --import tsx --test --test-reporter=tap test/model/webgpu-kernels.test.ts > "$out/webgpu-kernels-tests.tap" 2>&1
tail -n 3 "$out"/*.log "$out"/*.txt
grep -E '^# (pass|fail)' "$out/webgpu-kernels-tests.tap"
echo "results in $out"
