import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { generateProposals } from '../../stages/model/proposals.js';
import { synchronousReadBack } from '../../stages/model/read-back.js';

await tf.setBackend('cpu');

test('proposals keep the top-scoring anchors moved by their deltas, clipped, after NMS', async () => {
  // 4 anchors; anchor 1 duplicates anchor 0 with a lower score, anchor 3 sticks out of the 64x64 image.
  const anchors = tf.tensor2d([0, 0, 10, 10, 0, 0, 10, 10, 20, 20, 30, 30, 50, 50, 70, 70], [4, 4]);
  const objectLogit = [3, 2, -1, 1];
  const logits = tf.tensor3d(objectLogit.flatMap((l) => [0, l]), [1, 4, 2]);
  // Anchor 2 is moved down by half its height: dy = 0.5 / 0.1.
  const deltas = tf.tensor3d([0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0], [1, 4, 4]);
  const [p] = await generateProposals(logits, deltas, anchors, { preNmsTopN: 4, postNmsTopN: 10, nmsThresh: 0.7, bboxStdDev: [0.1, 0.1, 0.2, 0.2], imageSize: 64 }, synchronousReadBack);
  assert.deepEqual(Array.from(p!.boxes), [0, 0, 10, 10, 50, 50, 64, 64, 25, 20, 35, 30]);
  assert.ok(Math.abs(p!.scores[0]! - 1 / (1 + Math.exp(-3))) < 1e-5);
  const [q] = await generateProposals(logits, deltas, anchors, { preNmsTopN: 1, postNmsTopN: 10, nmsThresh: 0.7, bboxStdDev: [0.1, 0.1, 0.2, 0.2], imageSize: 64 }, synchronousReadBack);
  assert.equal(q!.boxes.length, 4, 'preNmsTopN limits the candidates');
});
