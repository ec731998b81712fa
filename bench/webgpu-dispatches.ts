// `npm run bench -- webgpu-dispatches`: dispatches per training step on the webgpu backend (each costs ~56 us of
// host time on the lent H100 whatever its size, so their number bounds a step from below), counted on whatever
// WebGPU device this machine has — Mesa's lavapipe here — by bench/device/count-dispatches.ts, one process per
// model. Without a device the rows say so. The counts are the same on any device; the times here are not GPU times.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './run.js';

const script = fileURLToPath(new URL('./device/count-dispatches.ts', import.meta.url));

interface Count { dispatches: number; readsBack: number; stepMs: number; trainableVariables: number }

function count(model: string, size: number): Count {
  const out = execFileSync(process.execPath, ['--import', 'tsx', script, model, String(size)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 900_000 });
  const json = out.slice(out.indexOf('{'));
  return JSON.parse(json) as Count;
}

export async function run(): Promise<BenchResult[]> {
  const cases = [
    { model: 'recipe', size: 128, label: "the recipe's Mask R-CNN (ResNet-101, B=2, trainStepAsync + AMSGrad)", before: '13,416, then 7,708, then 3,576 as the fused kernels came (2026-11-27)' },
    { model: 'resnet50', size: 64, label: 'the issue\'s ResNet-50 classifier (B=2, fused batch norm, FusedAdam)', before: 'stock tfjs: 5,521, then 1,518, then 1,257 (2026-11-27)' },
    { model: 'unet', size: 64, label: 'the issue\'s small residual U-Net (B=4, fused batch norm, FusedAdam)', before: '486, then 426 (2026-11-27)' },
  ];
  const rows: BenchResult[] = [];
  for (const c of cases) {
    try {
      const result = count(c.model, c.size);
      rows.push({
        name: `webgpu dispatches per training step, ${c.label}`,
        value: result.dispatches,
        unit: '',
        command: `node --import tsx bench/device/count-dispatches.ts ${c.model} ${c.size}`,
        note: `${c.before}; ${result.readsBack} reads of device data per step (each a host-device sync; reads issued together wait once); ${result.trainableVariables} trainable variables; counted at ${c.size} px on this machine's WebGPU device (the step took ${(result.stepMs / 1000).toFixed(1)} s there: not a GPU time)`,
      });
    } catch (error) {
      rows.push({ name: `webgpu dispatches per training step, ${c.label}`, value: Number.NaN, unit: '', note: `not counted: no WebGPU device here? (${String((error as Error).message).split('\n')[0]})` });
    }
  }
  return rows;
}
