import { test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import {
  cropArea,
  cropBox,
  cropFromFullMask,
  cropFromRle,
  cropsFromLabels,
  cropToFullMask,
  cropToRle,
  padCrop,
  tightenCrop,
} from '../../stages/evaluate/crop-mask.js';
import { encodeRle } from '../../stages/evaluate/rle.js';

test('decoding an RLE into a crop gives the tight box and the same pixels as a full decode', () => {
  const random = seedrandom('crop');
  for (let trial = 0; trial < 60; trial++) {
    const width = 1 + Math.floor(random() * 8);
    const height = 1 + Math.floor(random() * 8);
    const mask = Uint8Array.from({ length: width * height }, () => (random() < 0.3 ? 1 : 0));
    const runs = encodeRle(mask, width, height);
    const crop = cropFromRle(runs, width, height, 'x');
    assert.deepEqual(cropToFullMask(crop, width, height), mask);
    assert.deepEqual(tightenCrop(crop), crop, 'already tight');
    assert.deepEqual(cropToRle(crop, width, height), runs);
    assert.deepEqual(cropFromFullMask(mask, width, height), crop);
  }
});

test('a run crossing a column boundary widens the crop to the full height', () => {
  // 3x3 image, pixels 3..4 = (x0,y2) and (x1,y0).
  const crop = cropFromRle([3, 2], 3, 3, 'x');
  assert.deepEqual(cropBox(crop), [0, 0, 3, 2]);
  assert.equal(cropArea(crop), 2);
});

test('padding grows the rectangle but stops at the image edges and keeps the pixels', () => {
  const crop = cropFromFullMask(Uint8Array.from([0, 0, 0, 0, 1, 0, 0, 0, 0]), 3, 3);
  assert.deepEqual(cropBox(crop), [1, 1, 2, 2]);
  const padded = padCrop(crop, 2, 3, 3);
  assert.deepEqual(cropBox(padded), [0, 0, 3, 3]);
  assert.deepEqual(Array.from(padded.data), [0, 0, 0, 0, 1, 0, 0, 0, 0]);
  assert.deepEqual(tightenCrop(padded), crop);
});

test('each label of a label map becomes one crop, in label order, absent labels empty', () => {
  const labels = { width: 4, height: 2, count: 3, data: Uint16Array.from([1, 1, 0, 3, 0, 1, 0, 3]) };
  const crops = cropsFromLabels(labels);
  assert.equal(crops.length, 3);
  assert.deepEqual(cropBox(crops[0]!), [0, 0, 2, 2]);
  assert.deepEqual(Array.from(crops[0]!.data), [1, 1, 0, 1]);
  assert.equal(cropArea(crops[1]!), 0);
  assert.deepEqual(cropBox(crops[2]!), [0, 3, 2, 4]);
});
