import { test } from 'node:test';
import assert from 'node:assert/strict';
import seedrandom from 'seedrandom';
import { decodeRle, encodeRle, formatRle, parseRleText, rleArea, validateRle } from '../../stages/evaluate/rle.js';
import { StageError } from '../../stages/stage-error.js';

// A 3-wide, 4-high image: Kaggle numbers pixels down the columns, so (x=1, y=0) is pixel 5.
const mask3x4 = Uint8Array.from([
  0, 1, 0,
  1, 1, 0,
  1, 0, 0,
  0, 0, 1,
]);

test('encoding numbers pixels column-major from 1 and merges runs that continue down a column', () => {
  assert.deepEqual(encodeRle(mask3x4, 3, 4), [2, 2, 5, 2, 12, 1]);
});

test('a run that leaves the bottom of one column and enters the next is one run', () => {
  // 2x2 image with (x=0,y=1) and (x=1,y=0) set: Kaggle pixels 2 and 3.
  assert.deepEqual(encodeRle(Uint8Array.from([0, 1, 1, 0]), 2, 2), [2, 2]);
  assert.deepEqual(decodeRle([2, 2], 2, 2, 'x'), Uint8Array.from([0, 1, 1, 0]));
});

test('decoding inverts encoding on random masks', () => {
  const random = seedrandom('rle');
  for (let trial = 0; trial < 50; trial++) {
    const width = 1 + Math.floor(random() * 9);
    const height = 1 + Math.floor(random() * 9);
    const mask = Uint8Array.from({ length: width * height }, () => (random() < 0.4 ? 1 : 0));
    const runs = encodeRle(mask, width, height);
    assert.deepEqual(decodeRle(runs, width, height, 'x'), mask);
    assert.equal(rleArea(runs), mask.reduce((a, b) => a + b, 0));
  }
});

test('an empty mask encodes as no runs and an empty text parses as no runs', () => {
  assert.deepEqual(encodeRle(new Uint8Array(6), 2, 3), []);
  assert.deepEqual(parseRleText('  ', 'x'), []);
  assert.equal(formatRle([1, 3, 10, 5]), '1 3 10 5');
  assert.deepEqual(parseRleText(' 1 3  10 5 ', 'x'), [1, 3, 10, 5]);
});

const invalid: Array<[string, number[], RegExp]> = [
  ['an odd count of numbers', [1, 2, 5], /sub\.csv:7: the run-length encoding has 3 numbers/],
  ['a start of 0', [0, 2], /sub\.csv:7: pair 1 \(0 2\): the start must be a whole number >= 1/],
  ['a zero length', [1, 0], /pair 1 \(1 0\): the length must be a whole number >= 1/],
  ['a negative length', [3, -1], /pair 1 \(3 -1\): the length must be/],
  ['a run past the last pixel', [12, 2], /pair 1 \(12 2\): ends at pixel 13, beyond the 3x4 image's 12 pixels/],
  ['overlapping runs', [1, 3, 3, 2], /pair 2 \(3 2\): starts at pixel 3, inside or before the previous run \(which ends at 3\)/],
  ['unsorted runs', [8, 1, 2, 1], /pair 2 \(2 1\): starts at pixel 2, inside or before/],
];
for (const [what, runs, message] of invalid) {
  test(`${what} is rejected with an error naming the row and the pair`, () => {
    assert.throws(() => validateRle(runs, 3, 4, 'sub.csv:7'), (error: unknown) => error instanceof StageError && message.test(error.message));
  });
}

test('a run that ends exactly on the last pixel and runs that touch are valid', () => {
  validateRle([11, 2], 3, 4, 'x');
  validateRle([1, 2, 3, 2], 3, 4, 'x');
  assert.throws(() => validateRle([12, 2], 3, 4, 'x'), /beyond/);
});

test('a token that is not a whole number is rejected naming the row', () => {
  assert.throws(() => parseRleText('1 2 3.5 4', 'sub.csv:9'), /sub\.csv:9: "3\.5" in the run-length encoding is not a whole number/);
  assert.throws(() => parseRleText('1 -2', 'sub.csv:9'), /"-2"/);
});
