#!/usr/bin/env bash
# Here, before a lent-GPU session: fills .device/ (git-ignored; carried by the device tool) with Node, Dawn,
# the Vulkan loader (../shared/device/prepare-carry.sh, once), the bundled GPU scripts and the PyTorch peers.
# Then one device call runs them all: bash .device/gpu-run.sh  (carry [".device"]; results under $OUT).
set -euo pipefail
cd "$(dirname "$0")/../.."
shared=../shared/device
[ -f .device/node.xz ] || "$shared/prepare-carry.sh" .device
for script in webgpu-diagnose webgpu-maskrcnn; do
  node_modules/.bin/esbuild "bench/device/$script.ts" --bundle --platform=node --format=esm --external:webgpu \
    --outfile=".device/$script.mjs" --log-level=warning \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
done
# The webgpu kernel tests, to run on the GPU too (node --test on the bundle).
node_modules/.bin/esbuild test/model/webgpu-kernels.test.ts --bundle --platform=node --format=esm --external:webgpu \
  --outfile=.device/webgpu-kernels.test.mjs --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
cp "$shared/torch-resnet50-step.py" "$shared/torch-unet-step.py" .device/
cp bench/device/gpu-run.sh .device/gpu-run.sh
rm -f .device/webgpu-step.mjs .device/model-kernels.mjs .device/async-step.mjs # older bundles: the carry limit is 64 MiB
du -sh .device
