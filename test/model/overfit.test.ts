// Learning test: the whole Mask R-CNN (small backbone) fits one synthetic image — bright ellipses on a dark
// background with known masks — so that the total loss falls at least 5x, and detect() then finds every ellipse
// with its mask. Proves that every loss is wired to gradients that reduce it, through backbone, FPN, RPN,
// ROIAlign and both heads, and that inference reads the heads the way training taught them.
// Runs on wasm with backend.ts' training kernels (the stock cpu backend's conv gradients take ~100x longer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { configFromParams } from '../../stages/model/config.js';
import { MaskRcnn } from '../../stages/model/mask-rcnn.js';
import { selectBackend } from '../../stages/model/backend.js';
import { buildTrainBatch, imageMeta } from '../../stages/model/molding.js';
import { seededRng } from '../../stages/model/sampler.js';
import { Amsgrad } from '../../stages/train/amsgrad.js';
import type { Image8, LabelMap } from '../../stages/imaging/dataset.js';

await selectBackend('wasm', () => {}, { threads: 1 });

const size = 128;

/** A dark image with bright filled ellipses, and its instance label map. */
export function ellipsesSample(width: number, height: number, ellipses: Array<[cy: number, cx: number, ry: number, rx: number]>): { image: Image8; labels: LabelMap } {
  const data = new Uint8Array(width * height * 3).fill(20);
  const labels = new Uint16Array(width * height);
  ellipses.forEach(([cy, cx, ry, rx], k) => {
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
      if (((y + 0.5 - cy) / ry) ** 2 + ((x + 0.5 - cx) / rx) ** 2 > 1) continue;
      labels[y * width + x] = k + 1;
      data.fill(220, (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  });
  return { image: { width, height, channels: 3, data }, labels: { width, height, data: labels, count: ellipses.length } };
}

function smallTestConfig() {
  return configFromParams({
    preset: 'small',
    image: { size },
    rpn: { batchSizePerImage: 64, preNmsTopN: 300, postNmsTopNTrain: 100, postNmsTopNTest: 100 },
    // Matterport trains the heads on RPN proposals only; adding the GT boxes (torchvision) gives the heads
    // positives from the first step, before the random RPN proposes anything near a nucleus.
    roi: { batchSizePerImage: 32, addGtAsProposals: true },
    box: { fcDim: 64 },
    mask: { headChannels: 16 },
    backbone: { fpnChannels: 32 },
  });
}

function maskIou(a: Uint8Array, labels: Uint16Array, id: number): number {
  let intersection = 0;
  let union = 0;
  for (let p = 0; p < a.length; p++) {
    const inA = a[p] === 1;
    const inB = labels[p] === id;
    if (inA && inB) intersection++;
    if (inA || inB) union++;
  }
  return union === 0 ? 0 : intersection / union;
}

test('the small Mask R-CNN overfits one synthetic image: loss falls at least 5x and every ellipse is found', { timeout: 300_000 }, async () => {
  const config = smallTestConfig();
  const ellipses: Array<[number, number, number, number]> = [[30, 30, 12, 9], [80, 90, 10, 16], [95, 35, 14, 14]];
  const sample = ellipsesSample(size, size, ellipses);
  const batch = buildTrainBatch([sample], { ...config.image }, seededRng(1));
  const model = new MaskRcnn(config);
  const optimizer = new Amsgrad({ learningRate: 1e-3 });
  const history: number[] = [];
  let tensorsAfterFirstStep = 0;
  for (let step = 0; step < 60; step++) {
    history.push((await model.trainStep(optimizer, batch)).loss_total);
    if (step === 0) tensorsAfterFirstStep = tf.memory().numTensors;
  }
  const trace = history.map((v) => v.toFixed(3)).join(' ');
  assert.ok(history.every(Number.isFinite), `losses must stay finite: ${trace}`);
  const first = history[0]!;
  const last = Math.min(...history.slice(-5));
  assert.ok(first / last >= 5, `loss fell only ${(first / last).toFixed(2)}x: ${trace}`);
  assert.equal(tf.memory().numTensors, tensorsAfterFirstStep, 'training steps must not leak tensors');

  const [found] = await model.detect(batch.images, [imageMeta(size, size, size)]);
  assert.ok(found!.masks.length >= ellipses.length, `found ${found!.masks.length} of ${ellipses.length} ellipses`);
  for (let id = 1; id <= ellipses.length; id++) {
    const best = Math.max(...found!.masks.map((m) => maskIou(m, sample.labels.data, id)));
    assert.ok(best > 0.6, `ellipse ${id}: best mask IoU ${best.toFixed(2)}`);
  }
  batch.images.dispose();
  model.dispose();
});
