import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ignoredMatch, matchPredictions, negativeMatch } from '../../stages/model/matcher.js';

// 4 predictions x 2 GT boxes.
const iou = new Float32Array([
  0.8, 0.1, // pred 0: GT 0, positive
  0.2, 0.5, // pred 1: between thresholds -> ignored, but it is GT 1's best
  0.1, 0.25, // pred 2: negative
  0.0, 0.0, // pred 3: negative
]);
const options = { fgIouThresh: 0.7, bgIouThresh: 0.3, allowLowQualityMatches: false };

test('predictions above the foreground threshold match, below the background one are negative, between ignored', () => {
  assert.deepEqual(Array.from(matchPredictions(iou, 4, 2, options)), [0, ignoredMatch, negativeMatch, negativeMatch]);
});

test('with low-quality matches every GT box also takes its best prediction', () => {
  assert.deepEqual(Array.from(matchPredictions(iou, 4, 2, { ...options, allowLowQualityMatches: true })), [0, 1, negativeMatch, negativeMatch]);
});

test('ties for a GT box best IoU all become positive, but zero overlap never does', () => {
  const tied = new Float32Array([0.4, 0.4, 0.0]);
  assert.deepEqual(Array.from(matchPredictions(tied, 3, 1, { ...options, allowLowQualityMatches: true })), [0, 0, negativeMatch]);
  const none = new Float32Array([0, 0]);
  assert.deepEqual(Array.from(matchPredictions(none, 2, 1, { ...options, allowLowQualityMatches: true })), [negativeMatch, negativeMatch]);
});

test('no ground truth makes every prediction negative', () => {
  assert.deepEqual(Array.from(matchPredictions(new Float32Array(0), 3, 0, options)), [negativeMatch, negativeMatch, negativeMatch]);
});
