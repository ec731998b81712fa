import { test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import { cropFromFullMask, cropsFromLabels, type CropMask } from '../../stages/evaluate/crop-mask.js';
import { datasetScore, iouThresholdsPercent, overlaps, scoreImage } from '../../stages/evaluate/metric.js';

const W = 20;
const H = 10;

/** A crop from a list of [x, y] pixels in a W x H image. */
function pixels(list: Array<[number, number]>): CropMask {
  const mask = new Uint8Array(W * H);
  for (const [x, y] of list) mask[y * W + x] = 1;
  return cropFromFullMask(mask, W, H);
}

/** A w x h rectangle at (x, y) as a crop. */
function rect(x: number, y: number, w: number, h: number): CropMask {
  const list: Array<[number, number]> = [];
  for (let j = y; j < y + h; j++) for (let i = x; i < x + w; i++) list.push([i, j]);
  return pixels(list);
}

test('a perfect prediction scores 1 at every threshold', () => {
  const truth = [rect(0, 0, 4, 4), rect(10, 2, 5, 3)];
  const result = scoreImage(truth, [rect(10, 2, 5, 3), rect(0, 0, 4, 4)], W, H);
  assert.equal(result.score, 1);
  assert.deepEqual(result.truePositives, Array(10).fill(2));
});

test('an empty prediction scores 0, and so do predictions on an image without nuclei', () => {
  assert.equal(scoreImage([rect(0, 0, 4, 4)], [], W, H).score, 0);
  assert.equal(scoreImage([], [rect(0, 0, 4, 4)], W, H).score, 0);
});

test('an image with no nucleus and no prediction scores 1', () => {
  assert.equal(scoreImage([], [], W, H).score, 1);
});

test('instances with no pixels are not objects', () => {
  const empty = cropFromFullMask(new Uint8Array(W * H), W, H);
  const result = scoreImage([rect(0, 0, 4, 4), empty], [rect(0, 0, 4, 4), empty], W, H);
  assert.equal(result.score, 1);
  assert.equal(result.truthCount, 1);
  assert.equal(result.predictionCount, 1);
});

test('one nucleus predicted as two halves gives no true positive: 2 FP + 1 FN at every threshold', () => {
  const result = scoreImage([rect(0, 0, 8, 4)], [rect(0, 0, 4, 4), rect(4, 0, 4, 4)], W, H);
  // each half has IoU 0.5, which is not > 0.5
  assert.deepEqual(result.truePositives, Array(10).fill(0));
  assert.equal(result.score, 0);
});

test('an uneven split matches the bigger piece at low thresholds only', () => {
  // truth 10 pixels; prediction A = 7 of them (IoU 0.7), B = 3 (IoU 0.3)
  const result = scoreImage([rect(0, 0, 10, 1)], [rect(0, 0, 7, 1), rect(7, 0, 3, 1)], W, H);
  // IoU 0.7 > t for t = 0.50 .. 0.65 (4 thresholds): TP 1, FP 1, FN 0 -> 1/2; else 0/3
  assert.deepEqual(result.truePositives, [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(result.precisions, [0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0, 0, 0]);
  assert.equal(result.score, 0.2);
  assert.equal(result.matchedIoUSum, 0.7, 'only the piece matched at 0.50 counts');
});

test('the matched IoU sum takes each nucleus\'s match at 0.50 once, the best pair first', () => {
  // truth A (10 px) predicted by a 7-pixel piece (IoU 0.7) and the whole (IoU 1): the whole wins, the piece is
  // a false positive; truth B (4 px) predicted as 3 of its pixels (IoU 0.75); truth C missed.
  const truth = [rect(0, 0, 10, 1), rect(0, 2, 4, 1), rect(0, 4, 2, 2)];
  const result = scoreImage(truth, [rect(0, 0, 7, 1), rect(0, 0, 10, 1), rect(0, 2, 3, 1)], W, H);
  assert.equal(result.truePositives[0], 2);
  assert.equal(result.matchedIoUSum, 1 + 0.75);
});

test('an IoU exactly at a threshold is not a match and just above it is', () => {
  // truth 20 pixels, prediction the first 11 of them: IoU 11/20 = 0.55 exactly
  const at = scoreImage([rect(0, 0, 20, 1)], [rect(0, 0, 11, 1)], W, H);
  assert.deepEqual(at.truePositives, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  // a prediction of 12 of them: IoU 0.6 exactly: matches at 0.50 and 0.55, not at 0.60
  const just = scoreImage([rect(0, 0, 20, 1)], [rect(0, 0, 12, 1)], W, H);
  assert.deepEqual(just.truePositives, [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  // IoU 0.95 exactly (19/20) fails only at 0.95; 20/20 passes everywhere
  assert.deepEqual(scoreImage([rect(0, 0, 20, 1)], [rect(0, 0, 19, 1)], W, H).truePositives, [1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
});

test('a prediction spilling over two nuclei is measured against each with the right union', () => {
  const pairs = overlaps([rect(0, 0, 2, 1), rect(2, 0, 2, 1)], [rect(1, 0, 2, 1)], W, H);
  assert.deepEqual(
    pairs.sort((a, b) => a.truth - b.truth),
    [
      { prediction: 0, truth: 0, intersection: 1, union: 3 },
      { prediction: 0, truth: 1, intersection: 1, union: 3 },
    ],
  );
});

test('overlapping predictions cannot both match one nucleus', () => {
  const truth = [rect(0, 0, 10, 1)];
  const result = scoreImage(truth, [rect(0, 0, 10, 1), rect(0, 0, 9, 1)], W, H);
  assert.deepEqual(result.truePositives, Array(10).fill(1));
  assert.equal(result.precisions[0], 0.5);
});

test('the dataset score is the mean of the image scores', () => {
  assert.equal(datasetScore([1, 0, 0.5, 0.5]), 0.5);
  assert.throws(() => datasetScore([]), /no images/);
});

/** The definition, word for word: all pairs, full-size masks, IoU > t in floating point on exact fractions. */
function bruteForce(truth: Uint16Array, truthCount: number, pred: Uint16Array, predCount: number): number {
  const iou = (a: number, b: number): [number, number] => {
    let inter = 0;
    let union = 0;
    for (let p = 0; p < truth.length; p++) {
      const inA = truth[p] === a;
      const inB = pred[p] === b;
      if (inA && inB) inter++;
      if (inA || inB) union++;
    }
    return [inter, union];
  };
  const present = (labels: Uint16Array, count: number): number[] =>
    Array.from({ length: count }, (_, i) => i + 1).filter((l) => labels.includes(l));
  const truths = present(truth, truthCount);
  const preds = present(pred, predCount);
  if (truths.length === 0 && preds.length === 0) return 1;
  let sum = 0;
  for (const percent of iouThresholdsPercent) {
    let tp = 0;
    for (const a of truths) {
      for (const b of preds) {
        const [inter, union] = iou(a, b);
        if (inter * 100 > percent * union) tp++;
      }
    }
    sum += tp / (truths.length + preds.length - tp);
  }
  return sum / iouThresholdsPercent.length;
}

/** A random label map of blobs: random rectangles painted in order, later ones on top. */
function randomLabels(random: () => number, width: number, height: number, count: number): Uint16Array {
  const data = new Uint16Array(width * height);
  for (let label = 1; label <= count; label++) {
    const w = 1 + Math.floor(random() * 5);
    const h = 1 + Math.floor(random() * 5);
    const x0 = Math.floor(random() * (width - w + 1));
    const y0 = Math.floor(random() * (height - h + 1));
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) if (random() < 0.9) data[y * width + x] = label;
  }
  return data;
}

test('the score agrees with a brute-force reference on random label maps', () => {
  const random = seedrandom('metric');
  let nonTrivial = 0;
  for (let trial = 0; trial < 200; trial++) {
    const width = 6 + Math.floor(random() * 10);
    const height = 6 + Math.floor(random() * 10);
    const truthCount = Math.floor(random() * 6);
    const predCount = Math.floor(random() * 6);
    const truth = randomLabels(random, width, height, truthCount);
    // predictions: half the time a perturbed copy of the truth, so that matches at many thresholds occur
    const pred = random() < 0.5 ? randomLabels(random, width, height, predCount) : perturb(random, truth);
    const predLabels = Math.max(predCount, truthCount);
    const expected = bruteForce(truth, truthCount, pred, predLabels);
    const actual = scoreImage(
      cropsFromLabels({ width, height, data: truth, count: truthCount }),
      cropsFromLabels({ width, height, data: pred, count: predLabels }),
      width,
      height,
    ).score;
    assert.ok(Math.abs(actual - expected) < 1e-12, `trial ${trial}: ${actual} vs ${expected}`);
    if (expected > 0 && expected < 1) nonTrivial++;
  }
  assert.ok(nonTrivial > 30, `only ${nonTrivial} trials had a score strictly between 0 and 1`);
});

function perturb(random: () => number, labels: Uint16Array): Uint16Array {
  return labels.map((label) => (random() < 0.1 ? 0 : label));
}
