// Final detections from the box head (Matterport's refine_detections): each ROI takes its most probable class;
// background ROIs and those under minConfidence are dropped; the class's deltas refine the box, which is clipped
// to the image window; NMS per class; the best maxInstances remain, by descending score.
import { clipBoxes, decodeBoxes, type StdDev } from './box-coder.js';
import { batchedNms } from './nms.js';

export interface DetectionOptions {
  minConfidence: number;
  nmsThresh: number;
  maxInstances: number;
  bboxStdDev: StdDev;
}

export interface RefinedDetections {
  /** Float32Array [n * 4] pixels of the S x S frame, [y1, x1, y2, x2]. */
  boxes: Float32Array;
  /** Int32Array [n], >= 1. */
  classIds: Int32Array;
  /** Float32Array [n], descending. */
  scores: Float32Array;
}

/**
 * rois Float32Array [R * 4] pixels; probs Float32Array [R * C] (softmax); deltas Float32Array [R * C * 4];
 * window [y1, x1, y2, x2]: where the image lies in the input (boxes are clipped to it).
 */
export function refineDetections(
  rois: Float32Array,
  probs: Float32Array,
  deltas: Float32Array,
  numClasses: number,
  window: readonly [number, number, number, number],
  options: DetectionOptions,
): RefinedDetections {
  const r = rois.length / 4;
  if (probs.length !== r * numClasses || deltas.length !== r * numClasses * 4) {
    throw new Error(`detect: ${r} ROIs but ${probs.length} probabilities and ${deltas.length / 4} deltas for ${numClasses} classes`);
  }
  const candidates: number[] = [];
  const candidateClass: number[] = [];
  for (let i = 0; i < r; i++) {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (probs[i * numClasses + c]! > probs[i * numClasses + best]!) best = c;
    if (best === 0 || probs[i * numClasses + best]! < options.minConfidence) continue;
    candidates.push(i);
    candidateClass.push(best);
  }
  const n = candidates.length;
  const refs = new Float32Array(n * 4);
  const classDeltas = new Float32Array(n * 4);
  const scores = new Float32Array(n);
  candidates.forEach((roi, k) => {
    const c = candidateClass[k]!;
    refs.set(rois.subarray(4 * roi, 4 * roi + 4), 4 * k);
    classDeltas.set(deltas.subarray((roi * numClasses + c) * 4, (roi * numClasses + c) * 4 + 4), 4 * k);
    scores[k] = probs[roi * numClasses + c]!;
  });
  const boxes = clipBoxes(decodeBoxes(refs, classDeltas, options.bboxStdDev), window);
  const kept = batchedNms(boxes, scores, Int32Array.from(candidateClass), options.nmsThresh, options.maxInstances);
  const out: RefinedDetections = { boxes: new Float32Array(kept.length * 4), classIds: new Int32Array(kept.length), scores: new Float32Array(kept.length) };
  kept.forEach((k, i) => {
    out.boxes.set(boxes.subarray(4 * k, 4 * k + 4), 4 * i);
    out.classIds[i] = candidateClass[k]!;
    out.scores[i] = scores[k]!;
  });
  return out;
}
