import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cropToFullMask } from '../../stages/evaluate/crop-mask.js';
import { connectedComponents } from '../../stages/imaging/components.js';
import type { Image8 } from '../../stages/imaging/dataset.js';
import type { Detection } from '../../stages/model/mask-rcnn.js';
import {
  defaultPredictOptions, detectionToInstances, flipImageHorizontally, predictImages, type DetectFn, type PredictOptions,
} from '../../stages/predict/predict-core.js';
import type { MaskInstance } from '../../stages/predict/predictions.js';

/** A grey image (value 20) with bright (220) rectangles [x, y, w, h]. */
function imageWith(width: number, height: number, rects: Array<[number, number, number, number]>): Image8 {
  const data = new Uint8Array(width * height).fill(20);
  for (const [x0, y0, w, h] of rects) for (let y = y0; y < y0 + h; y++) data.fill(220, y * width + x0, y * width + x0 + w);
  return { width, height, channels: 1, data };
}

/** A detection whose instances are the given full-size masks, boxes their bounding boxes, scores descending. */
function detectionOf(masks: Uint8Array[], width: number): Detection {
  const boxes = new Float32Array(masks.length * 4);
  masks.forEach((mask, i) => {
    let [y1, x1, y2, x2] = [Infinity, Infinity, -1, -1];
    mask.forEach((v, p) => {
      if (!v) return;
      const y = Math.floor(p / width);
      const x = p % width;
      [y1, x1, y2, x2] = [Math.min(y1, y), Math.min(x1, x), Math.max(y2, y + 1), Math.max(x2, x + 1)];
    });
    boxes.set([y1, x1, y2, x2], 4 * i);
  });
  return { boxes, scores: Float32Array.from(masks, (_, i) => 0.99 - 0.01 * i), classIds: new Int32Array(masks.length).fill(1), masks };
}

/** A stand-in detector: every bright connected piece is one nucleus (so it commutes with flips). */
function brightPieces(image: Image8): Uint8Array[] {
  const bright = Uint8Array.from({ length: image.width * image.height }, (_, p) => (image.data[p * image.channels]! > 128 ? 1 : 0));
  const { labels, count } = connectedComponents(bright, image.width, image.height, 8);
  return Array.from({ length: count }, (_, k) => Uint8Array.from(labels, (label) => (label === k + 1 ? 1 : 0)));
}

/** Records the sizes of the images of every call. */
function recording(detect: (image: Image8) => Uint8Array[]): { fn: DetectFn; calls: string[][] } {
  const calls: string[][] = [];
  const fn: DetectFn = (images) => {
    calls.push(images.map((image) => `${image.width}x${image.height}`));
    return images.map((image) => detectionOf(detect(image), image.width));
  };
  return { fn, calls };
}

const full = (instances: MaskInstance[], width: number, height: number): number[][] =>
  instances.map((instance) => Array.from(cropToFullMask(instance.mask, width, height)));

const options = (overrides: Partial<PredictOptions>): PredictOptions => ({ ...defaultPredictOptions, ...overrides });

test('a detection becomes instances cropped to their pixels; masks left empty by the threshold are dropped', () => {
  const width = 10;
  const height = 8;
  const mask = new Uint8Array(width * height);
  mask[3 * width + 4] = 1;
  mask[4 * width + 5] = 1;
  const detection: Detection = {
    boxes: Float32Array.from([2.5, 3.2, 5.5, 6.9, 0, 0, 8, 10]),
    scores: Float32Array.from([0.9, 0.8]),
    classIds: Int32Array.from([1, 1]),
    masks: [mask, new Uint8Array(width * height)],
  };
  const instances = detectionToInstances(detection, width, height);
  assert.equal(instances.length, 1);
  assert.deepEqual({ x: instances[0]!.mask.x, y: instances[0]!.mask.y, width: instances[0]!.mask.width, height: instances[0]!.mask.height }, { x: 4, y: 3, width: 2, height: 2 });
  assert.deepEqual(instances[0]!.box, [2.5, Math.fround(3.2), 5.5, Math.fround(6.9)]);
  assert.equal(instances[0]!.score, Math.fround(0.9));
  assert.throws(() => detectionToInstances({ ...detection, masks: [mask] }, width, height), /2 scores, 2 boxes and 1 masks/);
});

test('flipping an image mirrors every row, keeps its channels, and twice gives it back', () => {
  const image: Image8 = { width: 3, height: 2, channels: 3, data: Uint8Array.from({ length: 18 }, (_, i) => i) };
  const flipped = flipImageHorizontally(image);
  assert.deepEqual(Array.from(flipped.data.subarray(0, 9)), [6, 7, 8, 3, 4, 5, 0, 1, 2]);
  assert.deepEqual(flipImageHorizontally(flipped), image);
});

test('on an image symmetric under the flip, hflip TTA gives the same instances as none', async () => {
  // Mirror-symmetric: pieces at x and at width - x - w, and one centred.
  const image = imageWith(40, 30, [[2, 3, 6, 5], [32, 3, 6, 5], [17, 12, 6, 9], [5, 22, 4, 4], [31, 22, 4, 4]]);
  const none = await predictImages([image], recording(brightPieces).fn, options({ tta: 'none', scaleDownRetry: false }));
  const detector = recording(brightPieces);
  const hflip = await predictImages([image], detector.fn, options({ tta: 'hflip', scaleDownRetry: false }));
  assert.equal(none[0]!.instances.length, 5);
  assert.deepEqual(full(hflip[0]!.instances, 40, 30), full(none[0]!.instances, 40, 30));
  assert.deepEqual(hflip[0]!.instances.map((i) => i.score), none[0]!.instances.map((i) => i.score));
  assert.deepEqual(detector.calls, [['40x30', '40x30']], 'the image and its mirror image go to the detector in one call');
});

test('hflip TTA deletes what only one pass saw and takes the union of what both saw', async () => {
  const width = 40;
  const height = 30;
  const image = imageWith(width, height, [[10, 10, 6, 6]]);
  // A biased detector: every piece comes out one pixel wider on the right, plus a false nucleus always in the
  // top-left corner (in the flipped pass it lands top-right once flipped back, so neither pass confirms it).
  const biased = (input: Image8): Uint8Array[] => {
    const masks = brightPieces(input).map((mask) => Uint8Array.from(mask, (v, p) => (v || (p % input.width > 0 && mask[p - 1]) ? 1 : 0)));
    const corner = new Uint8Array(input.width * input.height);
    for (let y = 0; y < 3; y++) corner.fill(1, y * input.width, y * input.width + 3);
    return [...masks, corner];
  };
  const [outcome] = await predictImages([image], recording(biased).fn, options({ tta: 'hflip', scaleDownRetry: false }));
  assert.equal(outcome!.instances.length, 1, 'the corner false positive is gone');
  // Plain pass: columns 10..16; flipped pass, flipped back: columns 9..15; union: 9..16.
  const expected = Array.from(imageWith(width, height, [[9, 10, 8, 6]]).data, (v) => (v > 128 ? 1 : 0));
  assert.deepEqual(full(outcome!.instances, width, height), [expected]);
});

test('an image the first pass finds nothing in is predicted again in a 4x canvas, and the masks are cut back', async () => {
  const image = imageWith(40, 30, [[30, 20, 8, 6]]);
  // Finds nuclei only in large inputs, as a network trained on small nuclei misses huge ones.
  const detector = recording((input) => (input.width >= 160 ? brightPieces(input) : []));
  const [outcome] = await predictImages([image], detector.fn, options({ tta: 'none' }));
  assert.deepEqual(detector.calls, [['40x30'], ['160x120']]);
  assert.equal(outcome!.retried, true);
  assert.equal(outcome!.retryUsed, true);
  const expected = Array.from(image.data, (v) => (v > 128 ? 1 : 0));
  assert.deepEqual(full(outcome!.instances, 40, 30), [expected]);
  assert.deepEqual(outcome!.instances[0]!.box, [20, 30, 26, 38]);
});

test('the retry runs with TTA too, only for the images that need it, and can be switched off', async () => {
  const found = imageWith(40, 30, [[2, 2, 8, 8]]);
  const missed = imageWith(30, 20, [[10, 5, 6, 6]]);
  const detect = (input: Image8): Uint8Array[] => (input.width === 30 ? [] : brightPieces(input));
  const detector = recording(detect);
  const outcomes = await predictImages([found, missed], detector.fn, options({ tta: 'hflip' }));
  assert.deepEqual(detector.calls, [['40x30', '30x20', '40x30', '30x20'], ['120x80', '120x80']]);
  assert.deepEqual(outcomes.map((o) => [o.retried, o.instances.length]), [[false, 1], [true, 1]]);

  const off = recording(detect);
  const without = await predictImages([found, missed], off.fn, options({ tta: 'hflip', scaleDownRetry: false }));
  assert.equal(off.calls.length, 1);
  assert.deepEqual(without.map((o) => [o.retried, o.instances.length]), [[false, 1], [false, 0]]);
});

test('a first pass whose only masks post-processing would drop (area <= 10) counts as empty', async () => {
  const image = imageWith(40, 30, [[5, 5, 3, 3], [20, 10, 12, 12]]);
  // In the image itself only the 3x3 speck is seen; on the canvas the big nucleus too.
  const detector = recording((input) => brightPieces(input).filter((mask) => input.width >= 160 || mask.reduce((a, b) => a + b, 0) < 20));
  const [outcome] = await predictImages([image], detector.fn, options({ tta: 'none' }));
  assert.equal(detector.calls.length, 2);
  assert.equal(outcome!.retryUsed, true);
  assert.equal(outcome!.instances.length, 2);
});

test('when the retry finds no more than the first pass, the first pass is kept', async () => {
  const image = imageWith(40, 30, [[5, 5, 3, 3]]);
  const detector = recording((input) => (input.width === 40 ? brightPieces(input) : []));
  const [outcome] = await predictImages([image], detector.fn, options({ tta: 'none' }));
  assert.equal(outcome!.retried, true);
  assert.equal(outcome!.retryUsed, false);
  assert.equal(outcome!.instances.length, 1, 'the 9-pixel speck of the first pass stays (postprocess decides its fate)');
});

test('a detector returning the wrong number of results is an error, not a silent mismatch', async () => {
  await assert.rejects(predictImages([imageWith(8, 8, [])], () => [], options({ tta: 'hflip' })), /returned 0 results for 2 images/);
});
