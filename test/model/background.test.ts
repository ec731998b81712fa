import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasBrightBackground, invertColours, withBackground } from '../../stages/model/background.js';
import { asNetworkSees } from '../../stages/model/input-view.js';
import { configFromParams } from '../../stages/model/config.js';
import type { Image8 } from '../../stages/imaging/dataset.js';

/** A one-row grey image with `counts` pixels of each value. */
function grey(counts: Array<[value: number, count: number]>): Image8 {
  const values = counts.flatMap(([value, count]) => Array.from({ length: count }, () => value));
  return { width: values.length, height: 1, channels: 1, data: Uint8Array.from(values) };
}

test('a bright background is a median pixel above 127: bright-field counts, fluorescence does not', () => {
  // 60 background pixels at 230 and 40 nuclei at 40: the median is 230.
  assert.equal(hasBrightBackground(grey([[40, 40], [230, 60]])), true);
  // 60 background at 10, 40 nuclei at 240: the median is 10.
  assert.equal(hasBrightBackground(grey([[10, 60], [240, 40]])), false);
  // The middle itself is not bright: 127 is not above 127, 128 is.
  assert.equal(hasBrightBackground(grey([[127, 10]])), false);
  assert.equal(hasBrightBackground(grey([[128, 10]])), true);
});

test('the median pixel of a colour image is the mean of its colour channels, alpha aside', () => {
  // (200, 200, 20) has mean 140 -> bright; alpha 0 does not pull it down. (100, 100, 160) has mean 120 -> dark.
  const rgba = (r: number, g: number, b: number): Image8 => ({ width: 1, height: 1, channels: 4, data: Uint8Array.from([r, g, b, 0]) });
  assert.equal(hasBrightBackground(rgba(200, 200, 20)), true);
  assert.equal(hasBrightBackground(rgba(100, 100, 160)), false);
});

test('dark inverts the colour channels of a bright image only; alpha is kept, as-is changes nothing', () => {
  const light: Image8 = { width: 2, height: 1, channels: 4, data: Uint8Array.from([250, 240, 230, 9, 30, 20, 10, 7]) };
  // Two pixels with means 240 and 20: the lower median, 20, is not bright. Three pixels, two of them light: 240.
  const three: Image8 = { width: 3, height: 1, channels: 4, data: Uint8Array.from([250, 240, 230, 9, 250, 240, 230, 8, 30, 20, 10, 7]) };
  assert.equal(withBackground(light, 'dark'), light);
  assert.deepEqual([...withBackground(three, 'dark').data], [5, 15, 25, 9, 5, 15, 25, 8, 225, 235, 245, 7]);
  assert.equal(withBackground(three, 'as-is'), three);
  assert.deepEqual([...invertColours(grey([[0, 1], [255, 1], [100, 1]])).data], [255, 0, 155]);
  assert.deepEqual([...three.data.subarray(0, 4)], [250, 240, 230, 9], 'the input is not changed');
});

test('the network view stretches first, then decides the background on the stretched pixels', () => {
  // Raw: 60 pixels at 100 (median 100: dark as it is), 40 at 60. The stretch maps 60..100 onto 0..255, so the
  // background becomes 255 (bright) and the image is inverted: background 0, nuclei 255.
  const image = grey([[60, 40], [100, 60]]);
  assert.equal(asNetworkSees(image, { contrast: 'none', background: 'dark' }), image);
  const seen = asNetworkSees(image, { contrast: 'stretch', background: 'dark' });
  assert.deepEqual([seen.data[0], seen.data[99]], [255, 0]);
});

test('image.background is a model config choice: as-is by default (the recipe), anything else a named error', () => {
  assert.equal(configFromParams({}).image.background, 'as-is');
  assert.equal(configFromParams({ preset: 'small', image: { background: 'dark' } }).image.background, 'dark');
  assert.throws(() => configFromParams({ image: { background: 'light' } }), /"image\.background" must be one of as-is, dark/);
});
