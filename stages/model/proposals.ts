// Region proposals from the RPN's outputs (Matterport's ProposalLayer): per image, the `preNmsTopN` anchors with
// the highest objectness, moved by their predicted deltas, clipped to the image, then NMS keeps at most
// `postNmsTopN`. The result leaves the graph as plain arrays: proposals are constants for everything after them
// (detection targets, ROIAlign inputs), which is what Matterport's tf.stop_gradient on the ROIs achieves.
import * as tf from '@tensorflow/tfjs';
import { decodeBoxesTensor, type StdDev } from './box-coder.js';
import { nms } from './nms.js';
import type { ReadBack } from './read-back.js';

export interface ProposalOptions {
  preNmsTopN: number;
  postNmsTopN: number;
  nmsThresh: number;
  bboxStdDev: StdDev;
  /** Square image side S: boxes are clipped to [0, 0, S, S]. */
  imageSize: number;
}

export interface Proposals {
  /** Float32Array [n * 4], pixels [y1, x1, y2, x2], by descending objectness. */
  boxes: Float32Array;
  /** Objectness probability of each: Float32Array [n]. */
  scores: Float32Array;
}

/**
 * logits [B, A, 2] (index 1 = object), deltas [B, A, 4], anchors [A, 4] pixels -> one Proposals per image.
 * Each image's ranked boxes come back through `readBack` (one read for the batch); NMS runs on the host. Call it
 * outside any gradient closure's loss path.
 */
export async function generateProposals(logits: tf.Tensor3D, deltas: tf.Tensor3D, anchors: tf.Tensor2D, options: ProposalOptions, readBack: ReadBack): Promise<Proposals[]> {
  const values = await readBack.read(rankedRows(logits, deltas, anchors, options));
  return values.map((rows) => suppressed(rows, options));
}

/** Per image, its top-ranked boxes and scores as one [k, 5] tensor: y1, x1, y2, x2, score. */
function rankedRows(logits: tf.Tensor3D, deltas: tf.Tensor3D, anchors: tf.Tensor2D, options: ProposalOptions): tf.Tensor2D[] {
  const batch = checkAnchors(logits, anchors);
  return tf.tidy(() => Array.from({ length: batch }, (_, b) => {
    const { boxes, scores } = rankedBoxes(logits, deltas, anchors, b, options);
    return tf.concat([boxes, scores.reshape([-1, 1])], 1) as tf.Tensor2D;
  }));
}

/** NMS over one image's ranked rows (read back): the kept boxes and scores, best first. */
function suppressed(rows: Float32Array, options: ProposalOptions): Proposals {
  const k = rows.length / 5;
  const boxes = new Float32Array(k * 4);
  const scores = new Float32Array(k);
  for (let i = 0; i < k; i++) {
    boxes.set(rows.subarray(5 * i, 5 * i + 4), 4 * i);
    scores[i] = rows[5 * i + 4]!;
  }
  const kept = nms(boxes, scores, options.nmsThresh, options.postNmsTopN);
  const proposals: Proposals = { boxes: new Float32Array(kept.length * 4), scores: new Float32Array(kept.length) };
  kept.forEach((index, i) => {
    proposals.boxes.set(boxes.subarray(4 * index, 4 * index + 4), 4 * i);
    proposals.scores[i] = scores[index]!;
  });
  return proposals;
}

/** The batch size B, after checking the RPN predicts one value per anchor. */
function checkAnchors(logits: tf.Tensor3D, anchors: tf.Tensor2D): number {
  const [batch, numAnchors] = logits.shape;
  if (anchors.shape[0] !== numAnchors) {
    throw new Error(`proposals: the RPN predicts ${numAnchors} anchors per image but there are ${anchors.shape[0]} anchors`);
  }
  return batch;
}

/** Image b's preNmsTopN most object-like anchors, moved by their deltas and clipped: boxes [k, 4], scores [k]. */
function rankedBoxes(logits: tf.Tensor3D, deltas: tf.Tensor3D, anchors: tf.Tensor2D, b: number, options: ProposalOptions): { boxes: tf.Tensor2D; scores: tf.Tensor1D } {
  const numAnchors = logits.shape[1];
  const k = Math.min(options.preNmsTopN, numAnchors);
  const objectness = tf.softmax(logits.slice([b, 0, 0], [1, numAnchors, 2]).reshape([numAnchors, 2])).slice([0, 1], [numAnchors, 1]).reshape([numAnchors]);
  const { values: topScores, indices } = tf.topk(objectness, k, true);
  const topDeltas = tf.gather(deltas.slice([b, 0, 0], [1, numAnchors, 4]).reshape([numAnchors, 4]), indices) as tf.Tensor2D;
  const topAnchors = tf.gather(anchors, indices) as tf.Tensor2D;
  const boxes = tf.clipByValue(decodeBoxesTensor(topAnchors, topDeltas, options.bboxStdDev), 0, options.imageSize) as tf.Tensor2D;
  return { boxes, scores: topScores as tf.Tensor1D };
}
