import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ignoredMatch, negativeMatch } from '../../stages/model/matcher.js';
import { sampleBalanced, seededRng } from '../../stages/model/sampler.js';

function matchesOf(positives: number, negatives: number, ignored: number): Int32Array {
  return Int32Array.from([...Array(positives).fill(0), ...Array(negatives).fill(negativeMatch), ...Array(ignored).fill(ignoredMatch)]);
}

test('at most the positive fraction of the batch is positive and negatives fill the rest', () => {
  const s = sampleBalanced(matchesOf(200, 1000, 50), 320, 0.5, seededRng(1));
  assert.equal(s.positives.length, 160);
  assert.equal(s.negatives.length, 160);
  const r = sampleBalanced(matchesOf(300, 1000, 0), 512, 0.33, seededRng(1));
  assert.equal(r.positives.length, Math.floor(512 * 0.33));
  assert.equal(r.negatives.length, 512 - 168);
});

test('few positives leave their places to negatives; ignored predictions are never sampled', () => {
  const m = matchesOf(10, 1000, 50);
  const s = sampleBalanced(m, 320, 0.5, seededRng(2));
  assert.equal(s.positives.length, 10);
  assert.equal(s.negatives.length, 310);
  for (const i of s.positives) assert.ok(m[i]! >= 0);
  for (const i of s.negatives) assert.equal(m[i], negativeMatch);
  assert.equal(new Set(s.negatives).size, 310, 'sampled without replacement');
});

test('the same seed samples the same anchors', () => {
  const m = matchesOf(100, 1000, 0);
  assert.deepEqual(sampleBalanced(m, 64, 0.5, seededRng(7)), sampleBalanced(m, 64, 0.5, seededRng(7)));
});
