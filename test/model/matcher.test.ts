import { test } from 'node:test';
import assert from 'node:assert/strict';
import { anchorSpec, generatePyramidAnchors } from '../../stages/model/anchors.js';
import { matchBoxes } from '../../stages/model/box-matcher.js';
import { configFromParams } from '../../stages/model/config.js';
import { iouMatrix } from '../../stages/model/iou.js';
import { ignoredMatch, matchPredictions, negativeMatch } from '../../stages/model/matcher.js';
import { seededRng } from '../../stages/model/sampler.js';

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

test('matchBoxes gives matchPredictions(iouMatrix(...))\'s matches without the matrix: recipe anchors, crowded GT with duplicates, inverted and empty boxes', () => {
  const anchors = generatePyramidAnchors(anchorSpec(configFromParams({ image: { size: 256 } })));
  for (const [numGt, seed] of [[0, 1], [1, 2], [40, 3], [300, 4]] as const) {
    const random = seededRng(seed);
    const gt = new Float32Array(4 * numGt);
    for (let j = 0; j < numGt; j++) {
      const y = random() * 250, x = random() * 250, h = 2 + random() * 40, w = 2 + random() * 40;
      gt.set(j % 17 === 5 ? gt.subarray(0, 4) : [y, x, y + h, x + w], 4 * j); // some duplicates of GT 0: tied IoUs
      if (j % 29 === 7) gt.set([y + h, x, y, x + w], 4 * j); // inverted: overlaps nothing
      if (j % 31 === 9) gt.set([y, x, y, x + w], 4 * j); // no height
    }
    // Predictions: the anchors, some GT boxes themselves (IoU 1), jittered GT boxes, inverted ones.
    const extra = new Float32Array(4 * 3 * Math.max(1, numGt));
    for (let k = 0; k < extra.length / 4; k++) {
      const j = numGt > 0 ? k % numGt : 0;
      const box = numGt > 0 ? Array.from(gt.subarray(4 * j, 4 * j + 4)) : [0, 0, 10, 10];
      const jitter = k % 3 === 0 ? 0 : 3;
      extra.set(box.map((v) => v + (random() - 0.5) * jitter), 4 * k);
      if (k % 13 === 4) extra.set([box[2]!, box[1]!, box[0]!, box[3]!], 4 * k);
    }
    const predictions = new Float32Array(anchors.length + extra.length);
    predictions.set(anchors, 0);
    predictions.set(extra, anchors.length);
    const n = predictions.length / 4;
    for (const options of [
      { fgIouThresh: 0.7, bgIouThresh: 0.3, allowLowQualityMatches: true }, // the RPN's
      { fgIouThresh: 0.5, bgIouThresh: 0.5, allowLowQualityMatches: false }, // the detection targets'
      { fgIouThresh: 0, bgIouThresh: 0, allowLowQualityMatches: true }, // an IoU of 0 counts too
    ]) {
      const dense = matchPredictions(iouMatrix(predictions, gt), n, numGt, options);
      assert.deepEqual(Array.from(matchBoxes(predictions, gt, options)), Array.from(dense), `${numGt} GT, ${JSON.stringify(options)}`);
    }
  }
});

test('matchBoxes with a non-finite coordinate takes the dense path and still agrees', () => {
  const predictions = new Float32Array([0, 0, 10, 10, Number.NaN, 0, 5, 5, 2, 2, 12, 12]);
  const gt = new Float32Array([1, 1, 11, 11, 0, 0, Number.POSITIVE_INFINITY, 4]);
  const options = { fgIouThresh: 0.5, bgIouThresh: 0.3, allowLowQualityMatches: true };
  assert.deepEqual(Array.from(matchBoxes(predictions, gt, options)), Array.from(matchPredictions(iouMatrix(predictions, gt), 3, 2, options)));
});

test('matchBoxes equals the dense form on 400 small integer grids, where IoUs hit the thresholds exactly', () => {
  for (let seed = 0; seed < 400; seed++) {
    const random = seededRng(`grid${seed}`);
    const span = 2 + Math.floor(random() * 10);
    const box = () => [0, 0, 0, 0].map(() => Math.floor(random() * span));
    const n = 1 + Math.floor(random() * 40);
    const g = Math.floor(random() * 8);
    const predictions = Float32Array.from(Array.from({ length: n }, box).flat());
    const gt = Float32Array.from(Array.from({ length: g }, box).flat());
    for (const [fgIouThresh, bgIouThresh, allowLowQualityMatches] of [[0.5, 0.3, true], [0.5, 0.5, false], [1 / 3, 0.25, true], [0, 0, true]] as const) {
      const options = { fgIouThresh, bgIouThresh, allowLowQualityMatches };
      const dense = matchPredictions(iouMatrix(predictions, gt), n, g, options);
      assert.deepEqual(Array.from(matchBoxes(predictions, gt, options)), Array.from(dense), `seed ${seed}, ${JSON.stringify(options)}`);
    }
  }
});
