import { test } from 'node:test';
import assert from 'node:assert/strict';
import { phaseEstimate } from '../../stages/train/phase-estimate.js';

function clock(stepMs: number, firstMs: number): () => number {
  let t = 0;
  let calls = 0;
  return () => (t += calls++ === 0 ? firstMs : stepMs);
}

test('the estimate leaves out the first step and names the time left after three steps', () => {
  const lines: string[] = [];
  const estimate = phaseEstimate({ backend: 'wasm', phase: 'phase1', totalSteps: 103, log: (m) => lines.push(m), now: clock(2000, 60_000) });
  assert.equal(estimate.stepDone(), undefined);
  assert.equal(estimate.stepDone(), undefined);
  assert.equal(estimate.stepDone(), 200); // 2 s a step, 100 steps left
  assert.deepEqual(lines, ['train: 2.0 s a step on wasm: phase1 needs about 3 min more (100 steps)']);
});

test('a phase of days on a CPU backend warns and names the cpu profile and a GPU; a GPU backend does not', () => {
  const lines: string[] = [];
  const slow = phaseEstimate({ backend: 'wasm', phase: 'phase1', totalSteps: 3 + 9375 * 25, log: (m) => lines.push(m), now: clock(60_000, 60_000) });
  for (let i = 0; i < 3; i++) slow.stepDone();
  assert.equal(lines.length, 2);
  assert.match(lines[1]!, /warning: .*days.*--profile cpu.*train\.backend=webgpu/);
  const gpuLines: string[] = [];
  const gpu = phaseEstimate({ backend: 'webgpu', phase: 'phase1', totalSteps: 1e6, log: (m) => gpuLines.push(m), now: clock(60_000, 60_000) });
  for (let i = 0; i < 3; i++) gpu.stepDone();
  assert.equal(gpuLines.length, 1);
});
