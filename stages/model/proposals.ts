// Region proposals from the RPN's outputs (Matterport's ProposalLayer): per image, the `preNmsTopN` anchors with
// the highest objectness, moved by their predicted deltas, clipped to the image, then NMS keeps at most
// `postNmsTopN`. The result leaves the graph as plain arrays: proposals are constants for everything after them
// (detection targets, ROIAlign inputs), which is what Matterport's tf.stop_gradient on the ROIs achieves.
import * as tf from '@tensorflow/tfjs';
import { decodeBoxesTensor, type StdDev } from './box-coder.js';

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
 * Reads values back (NMS is synchronous), so call it outside any gradient closure's loss path.
 */
export function generateProposals(logits: tf.Tensor3D, deltas: tf.Tensor3D, anchors: tf.Tensor2D, options: ProposalOptions): Proposals[] {
  const [batch, numAnchors] = logits.shape;
  if (anchors.shape[0] !== numAnchors) {
    throw new Error(`proposals: the RPN predicts ${numAnchors} anchors per image but there are ${anchors.shape[0]} anchors`);
  }
  const out: Proposals[] = [];
  for (let b = 0; b < batch; b++) {
    out.push(tf.tidy(() => {
      const k = Math.min(options.preNmsTopN, numAnchors);
      const objectness = tf.softmax(logits.slice([b, 0, 0], [1, numAnchors, 2]).reshape([numAnchors, 2])).slice([0, 1], [numAnchors, 1]).reshape([numAnchors]);
      const { values: topScores, indices } = tf.topk(objectness, k, true);
      const topDeltas = tf.gather(deltas.slice([b, 0, 0], [1, numAnchors, 4]).reshape([numAnchors, 4]), indices) as tf.Tensor2D;
      const topAnchors = tf.gather(anchors, indices) as tf.Tensor2D;
      const boxes = tf.clipByValue(decodeBoxesTensor(topAnchors, topDeltas, options.bboxStdDev), 0, options.imageSize) as tf.Tensor2D;
      const kept = tf.image.nonMaxSuppression(boxes, topScores as tf.Tensor1D, options.postNmsTopN, options.nmsThresh);
      return {
        boxes: tf.gather(boxes, kept).dataSync() as Float32Array,
        scores: tf.gather(topScores, kept).dataSync() as Float32Array,
      };
    }));
  }
  return out;
}
