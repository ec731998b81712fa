import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { batchedNms, nms } from '../../stages/model/nms.js';
import { seededRng } from '../../stages/model/sampler.js';

await tf.setBackend('cpu');

const boxes = new Float32Array([0, 0, 10, 10, 1, 1, 11, 11, 20, 20, 30, 30, 0, 0, 10, 9]);
const scores = new Float32Array([0.9, 0.8, 0.7, 0.95]);

test('nms keeps the best box of each overlapping group, by descending score', () => {
  // Box 3 (0.95) overlaps box 0 (IoU 0.9) and box 1; box 2 stands alone.
  assert.deepEqual(Array.from(nms(boxes, scores, 0.5, 10)), [3, 2]);
  assert.deepEqual(Array.from(nms(boxes, scores, 0.5, 1)), [3]);
  assert.deepEqual(Array.from(nms(new Float32Array(0), new Float32Array(0), 0.5, 10)), []);
});

test('batched nms only suppresses within a class', () => {
  const classIds = new Int32Array([1, 1, 1, 2]);
  assert.deepEqual(Array.from(batchedNms(boxes, scores, classIds, 0.5, 10)), [3, 0, 2]);
});

/**
 * Proposal-like boxes: clusters of jittered boxes around "nuclei" of many sizes in a 512 image, some with their
 * corners swapped, some of no area, a few huge ones, scores with ties (quantised) and a few NaN and -Infinity.
 */
function proposalLike(n: number, seed: number): { boxes: Float32Array; scores: Float32Array } {
  const random = seededRng(seed);
  const boxes = new Float32Array(4 * n);
  const scores = new Float32Array(n);
  const centres = Array.from({ length: Math.max(1, n >> 5) }, () => [random() * 512, random() * 512, 4 + random() * 60] as const);
  for (let i = 0; i < n; i++) {
    const [cy, cx, size] = centres[Math.floor(random() * centres.length)]!;
    const h = random() < 0.01 ? 300 + random() * 200 : size * (0.6 + random() * 0.8);
    const w = random() < 0.02 ? 0 : h * (0.5 + random());
    const y = cy + (random() - 0.5) * size * 0.6;
    const x = cx + (random() - 0.5) * size * 0.6;
    const box = [y - h / 2, x - w / 2, y + h / 2, x + w / 2];
    if (random() < 0.05) box.reverse(); // [x2, y2, x1, y1]: tfjs takes min and max per axis
    boxes.set(box, 4 * i);
    const r = random();
    scores[i] = r < 0.005 ? Number.NaN : r < 0.01 ? Number.NEGATIVE_INFINITY : Math.round(random() * 200) / 200;
  }
  return { boxes, scores };
}

test('nms selects exactly what tf.image.nonMaxSuppression selects, on proposal-like boxes with ties, flips, empty and huge boxes', async () => {
  let compared = 0;
  for (const [n, seed] of [[50, 1], [600, 2], [3000, 3], [6000, 4]] as const) {
    const { boxes, scores } = proposalLike(n, seed);
    for (const threshold of [0, 0.3, 0.5, 0.7, 1]) {
      for (const maxOutput of [1, 17, 2000, n + 5]) {
        const expected = tf.tidy(() => tf.image.nonMaxSuppression(tf.tensor2d(boxes, [n, 4]), tf.tensor1d(scores), maxOutput, threshold).dataSync());
        assert.deepEqual(Array.from(nms(boxes, scores, threshold, maxOutput)), Array.from(expected), `n ${n}, threshold ${threshold}, maxOutput ${maxOutput}`);
        compared++;
      }
    }
  }
  assert.equal(compared, 80);
  // The grid's reason to exist: thousands of boxes, most of them suppressed or far apart.
  const { boxes, scores } = proposalLike(6000, 5);
  assert.ok(nms(boxes, scores, 0.7, 2000).length > 100);
});

test('nms with a non-finite coordinate or an out-of-range threshold: tfjs\' own selection, or an error', () => {
  const { boxes, scores } = proposalLike(200, 6);
  boxes[8] = Number.NaN;
  boxes[13] = Number.POSITIVE_INFINITY;
  const expected = tf.tidy(() => tf.image.nonMaxSuppression(tf.tensor2d(boxes, [200, 4]), tf.tensor1d(scores), 100, 0.5).dataSync());
  assert.deepEqual(Array.from(nms(boxes, scores, 0.5, 100)), Array.from(expected));
  assert.throws(() => nms(boxes, scores, 1.5, 10), /IoU threshold must be in \[0, 1\]/);
  assert.throws(() => nms(boxes, scores, Number.NaN, 10), /IoU threshold/);
});

test('nms equals tf.image.nonMaxSuppression on 400 small integer grids, where IoUs hit the threshold exactly', () => {
  for (let seed = 0; seed < 400; seed++) {
    const random = seededRng(`grid${seed}`);
    const n = 1 + Math.floor(random() * 40);
    const span = 2 + Math.floor(random() * 10);
    const boxes = Float32Array.from({ length: 4 * n }, () => Math.floor(random() * span));
    const scores = Float32Array.from({ length: n }, () => Math.floor(random() * 4) / 4);
    for (const threshold of [0, 0.25, 1 / 3, 0.5, 2 / 3, 1]) {
      const maxOutput = 1 + Math.floor(random() * n);
      const expected = tf.tidy(() => tf.image.nonMaxSuppression(tf.tensor2d(boxes, [n, 4]), tf.tensor1d(scores), maxOutput, threshold).dataSync());
      assert.deepEqual(Array.from(nms(boxes, scores, threshold, maxOutput)), Array.from(expected), `seed ${seed}, threshold ${threshold}`);
    }
  }
});
