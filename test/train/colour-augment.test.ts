import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Image8 } from '../../stages/imaging/dataset.js';
import { augmentColour, greyScale, invert, noColourAugment, rotateHue } from '../../stages/train/colour-augment.js';
import { augmentSample, defaultAugmentOptions } from '../../stages/train/augment.js';

const rgb = (...pixels: number[][]): Image8 => ({ width: pixels.length, height: 1, channels: 3, data: Uint8Array.from(pixels.flat()) });

test('grey-scale sets every channel to the BT.601 luma', () => {
  // 0.299 * 200 + 0.587 * 100 + 0.114 * 50 = 124.2
  assert.deepEqual(Array.from(greyScale(rgb([200, 100, 50], [0, 0, 0])).data), [124, 124, 124, 0, 0, 0]);
});

test('inversion flips colour channels and keeps alpha', () => {
  const rgba: Image8 = { width: 1, height: 1, channels: 4, data: Uint8Array.from([0, 10, 255, 77]) };
  assert.deepEqual(Array.from(invert(rgba).data), [255, 245, 0, 77]);
  assert.deepEqual(Array.from(invert({ width: 2, height: 1, channels: 1, data: Uint8Array.from([3, 250]) }).data), [252, 5]);
});

test('a hue rotation keeps grey pixels grey and a zero rotation at saturation 1 keeps colours', () => {
  assert.deepEqual(Array.from(rotateHue(rgb([90, 90, 90]), 120, 1.5).data), [90, 90, 90]);
  const purple = rgb([150, 60, 170]);
  const same = rotateHue(purple, 0, 1).data;
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(same[c]! - purple.data[c]!) <= 1, `${Array.from(same)}`);
  // Saturation 0 leaves the luma only: 0.299*150 + 0.587*60 + 0.114*170 = 99.4
  assert.deepEqual(Array.from(rotateHue(purple, 0, 0).data), [99, 99, 99]);
  // 180 degrees moves purple (high R and B, low G) to a green-dominant colour.
  const turned = rotateHue(purple, 180, 1).data;
  assert.ok(turned[1]! > turned[0]! && turned[1]! > turned[2]!, `${Array.from(turned)}`);
});

test('no colour augmentation draws no random number, so the recipe\'s geometric stream is unchanged', () => {
  let draws = 0;
  const random = () => (draws++, 0.5);
  const image = rgb([1, 2, 3]);
  assert.equal(augmentColour(image, random, noColourAugment).image, image);
  assert.equal(draws, 0);
  const always = { ...noColourAugment, greyProbability: 1, invertProbability: 1 };
  const out = augmentColour(rgb([200, 100, 50]), () => 0, always);
  assert.deepEqual(out.applied, ['grey', 'invert']);
  assert.deepEqual(Array.from(out.image.data), [131, 131, 131]);
  // Colour keys are part of the augmentation options a pipeline sets.
  const sample = augmentSample({ image: rgb([200, 100, 50]), labels: { width: 1, height: 1, data: Uint16Array.of(1), count: 1 } }, () => 0,
    { ...defaultAugmentOptions, ...always, size: 1, inputSize: 1 });
  assert.ok(sample.applied.includes('grey') && sample.applied.includes('invert'));
});
