// `npm run bench -- host-boxes`: the box work a training step does on the host, ours against what it replaced.
// (1) NMS of the recipe's proposals (6,000 boxes an image, IoU 0.7, up to 2,048 kept): stages/model/greedy-nms.ts
// against tfjs' host implementation (what the cpu and webgpu backends ran before, and still run for inputs with
// a non-finite coordinate) and the wasm backend's C++ kernel. Boxes: the recipe's anchors at 512 px moved by
// small random deltas, the top 6,000 by a random objectness (a young RPN) or clustered on nuclei (a trained one).
// (2) The RPN targets' matching of the recipe's 65,472 anchors to an image's GT boxes: stages/model/box-matcher.ts
// against the dense IoU matrix and matcher it replaced. Each pair must give the same result: checked before timing.
import { anchorSpec, generatePyramidAnchors } from '../stages/model/anchors.js';
import { configFromParams } from '../stages/model/config.js';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../stages/model/backend.js';
import { matchBoxes } from '../stages/model/box-matcher.js';
import { iouMatrix } from '../stages/model/iou.js';
import { matchPredictions } from '../stages/model/matcher.js';
import { nms, tfjsNms } from '../stages/model/nms.js';
import { seededRng } from '../stages/model/sampler.js';
import type { BenchResult } from './run.js';
import { timeIt } from './timing.js';

/** The top `count` of the recipe's anchors by a random score, each moved by up to `jitter` of its size. */
function proposals(count: number, jitter: number, seed: number, clustered: boolean): { boxes: Float32Array; scores: Float32Array } {
  const random = seededRng(seed);
  const anchors = generatePyramidAnchors(anchorSpec(configFromParams({})));
  const total = anchors.length / 4;
  // A trained RPN scores the anchors over ~200 nuclei highest: pick the anchors near random centres there.
  const centres = Array.from({ length: 200 }, () => [random() * 512, random() * 512]);
  const score = new Float32Array(total);
  for (let i = 0; i < total; i++) {
    if (!clustered) { score[i] = random(); continue; }
    const cy = (anchors[4 * i]! + anchors[4 * i + 2]!) / 2;
    const cx = (anchors[4 * i + 1]! + anchors[4 * i + 3]!) / 2;
    const near = centres.reduce((best, [y, x]) => Math.min(best, Math.hypot(cy - y!, cx - x!)), Infinity);
    score[i] = Math.exp(-near / 20) * (0.5 + 0.5 * random());
  }
  const order = Array.from({ length: total }, (_, i) => i).sort((a, b) => score[b]! - score[a]!).slice(0, count);
  const boxes = new Float32Array(4 * count);
  const scores = new Float32Array(count);
  order.forEach((index, k) => {
    const [y1, x1, y2, x2] = [0, 1, 2, 3].map((c) => anchors[4 * index + c]!) as [number, number, number, number];
    const h = y2 - y1;
    const w = x2 - x1;
    const move = (size: number) => (random() - 0.5) * 2 * jitter * size;
    const clip = (v: number) => Math.min(512, Math.max(0, v));
    boxes.set([clip(y1 + move(h)), clip(x1 + move(w)), clip(y2 + move(h)), clip(x2 + move(w))], 4 * k);
    scores[k] = score[index]!;
  });
  return { boxes, scores };
}

export async function run(): Promise<BenchResult[]> {
  const rows: BenchResult[] = [];
  await selectBackend('wasm', () => {}); // its C++ kernel: what the wasm backend ran before
  const cases = [
    { label: 'a young RPN: 6,000 random anchors of the recipe at 512, jittered 10%', clustered: false, threshold: 0.7, keep: 2048 },
    { label: 'a trained RPN: 6,000 anchors clustered on 200 nuclei, jittered 10%', clustered: true, threshold: 0.7, keep: 2048 },
  ];
  for (const c of cases) {
    const { boxes, scores } = proposals(6000, 0.1, 7, c.clustered);
    const ours = nms(boxes, scores, c.threshold, c.keep);
    const theirs = tfjsNms(boxes, scores, c.threshold, c.keep);
    if (ours.length !== theirs.length || ours.some((v, i) => v !== theirs[i])) throw new Error(`nms bench: the selections differ (${c.label})`);
    const tfjsMs = timeIt(3, () => tfjsNms(boxes, scores, c.threshold, c.keep));
    const oursMs = timeIt(20, () => nms(boxes, scores, c.threshold, c.keep));
    const wasmMs = timeIt(5, () => tf.tidy(() => tf.image.nonMaxSuppression(tf.tensor2d(boxes, [6000, 4]), tf.tensor1d(scores), c.keep, c.threshold).dataSync()));
    rows.push({ name: `NMS of ${c.label}, IoU ${c.threshold}, up to ${c.keep} kept: tfjs' host implementation`, value: tfjsMs, unit: 'ms', note: `${theirs.length} kept` });
    const wasmKept = tf.tidy(() => tf.image.nonMaxSuppression(tf.tensor2d(boxes, [6000, 4]), tf.tensor1d(scores), c.keep, c.threshold).dataSync());
    const same = wasmKept.length === ours.length && ours.every((v, i) => v === wasmKept[i]);
    rows.push({ name: `NMS of ${c.label}, IoU ${c.threshold}, up to ${c.keep} kept: the wasm backend's kernel (C++)`, value: wasmMs, unit: 'ms', note: same ? 'the same selection' : `a different selection (float32 IoU): ${wasmKept.length} kept` });
    rows.push({ name: `NMS of ${c.label}, IoU ${c.threshold}, up to ${c.keep} kept: ours (grid)`, value: oursMs, unit: 'ms', note: `the same ${ours.length} boxes; ${(tfjsMs / oursMs).toFixed(0)}x faster` });
  }
  const anchors = generatePyramidAnchors(anchorSpec(configFromParams({})));
  const random = seededRng(11);
  const options = { fgIouThresh: 0.7, bgIouThresh: 0.3, allowLowQualityMatches: true };
  for (const numGt of [40, 300]) {
    // Nuclei 6-36 px in a 512 image: a typical DSB2018 image has ~40, a crowded one or a mosaic hundreds.
    const gt = new Float32Array(4 * numGt);
    for (let j = 0; j < numGt; j++) {
      const y = random() * 490, x = random() * 490, side = 6 + random() * 30;
      gt.set([y, x, y + side * (0.7 + 0.6 * random()), x + side], 4 * j);
    }
    const n = anchors.length / 4;
    const dense = matchPredictions(iouMatrix(anchors, gt), n, numGt, options);
    const ours = matchBoxes(anchors, gt, options);
    if (ours.some((v, i) => v !== dense[i])) throw new Error(`host-boxes bench: the matches differ (${numGt} GT)`);
    const denseMs = timeIt(5, () => matchPredictions(iouMatrix(anchors, gt), n, numGt, options));
    const oursMs = timeIt(10, () => matchBoxes(anchors, gt, options));
    rows.push({ name: `RPN targets: matching the recipe's ${n} anchors to ${numGt} GT boxes, dense IoU matrix + matcher`, value: denseMs, unit: 'ms' });
    rows.push({ name: `RPN targets: matching the recipe's ${n} anchors to ${numGt} GT boxes, ours (grid, no matrix)`, value: oursMs, unit: 'ms', note: `the same matches; ${(denseMs / oursMs).toFixed(1)}x faster` });
  }
  return rows;
}
