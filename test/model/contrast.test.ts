import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stretchContrast, withContrast } from '../../stages/model/contrast.js';
import { configFromParams } from '../../stages/model/config.js';
import type { Image8 } from '../../stages/imaging/dataset.js';

/** A grey image of 1,000 pixels: `counts` pixels of each value. */
function grey(counts: Array<[value: number, count: number]>): Image8 {
  const values = counts.flatMap(([value, count]) => Array.from({ length: count }, () => value));
  return { width: values.length, height: 1, channels: 1, data: Uint8Array.from(values) };
}

test('stretch maps the 1st..99.9th percentile onto 0..255 and clamps beyond it', () => {
  // 1,000 pixels: 5 dead (0), 989 background at 11, 5 nuclei at 15, 1 hot pixel at 200. The 1st percentile
  // (the 10th value) is 11, the 99.9th (the 999th value) is 15: 11 -> 0, 13 -> 127.5 -> 128, 15 -> 255, and
  // the dead and hot pixels clamp to 0 and 255.
  const image = grey([[0, 5], [11, 985], [13, 4], [15, 5], [200, 1]]);
  const out = stretchContrast(image);
  const at = (value: number) => out.data[image.data.indexOf(value)];
  assert.equal(at(0), 0);
  assert.equal(at(11), 0);
  assert.equal(at(13), 128);
  assert.equal(at(15), 255);
  assert.equal(at(200), 255);
  assert.equal(image.data[0], 0, 'the input is not changed');
});

test('stretch takes one range over the colour channels (hue kept) and leaves alpha alone', () => {
  // Two RGBA pixels repeated: (10, 20, 30, 7) and (40, 50, 60, 9). Over the 6 colour values per pair, the 1st
  // percentile is 10 and the 99.9th is 60, so every channel maps through (v - 10) * 255 / 50.
  const data = new Uint8Array(4 * 500);
  for (let i = 0; i < 500; i++) data.set(i % 2 ? [40, 50, 60, 9] : [10, 20, 30, 7], i * 4);
  const out = stretchContrast({ width: 500, height: 1, channels: 4, data });
  assert.deepEqual([...out.data.subarray(0, 8)], [0, 51, 102, 7, 153, 204, 255, 9]);
});

test('a flat image, and the mode none, come back unchanged', () => {
  const flat = grey([[42, 1000]]);
  assert.equal(stretchContrast(flat), flat);
  const image = grey([[0, 500], [9, 500]]);
  assert.equal(withContrast(image, 'none'), image);
  assert.notEqual(withContrast(image, 'stretch'), image);
});

test('image.contrast is a model config choice: none by default (the recipe), anything else a named error', () => {
  assert.equal(configFromParams({}).image.contrast, 'none');
  assert.equal(configFromParams({ preset: 'small', image: { contrast: 'stretch' } }).image.contrast, 'stretch');
  assert.throws(() => configFromParams({ image: { contrast: 'equalise' } }), /"image\.contrast" must be one of none, stretch/);
});
