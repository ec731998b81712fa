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
  const found = candidates(rois, probs, deltas, numClasses, window, options);
  return kept(found, batchedNms(found.boxes, found.scores, found.classIds, options.nmsThresh, options.maxInstances));
}

/** Every confident foreground ROI with its best class, its refined and clipped box, and its score (before NMS). */
function candidates(
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
  return { boxes: clipBoxes(decodeBoxes(refs, classDeltas, options.bboxStdDev), window), classIds: Int32Array.from(candidateClass), scores };
}

/** The candidates NMS kept, in its order. */
function kept(found: RefinedDetections, indices: Int32Array): RefinedDetections {
  const out: RefinedDetections = { boxes: new Float32Array(indices.length * 4), classIds: new Int32Array(indices.length), scores: new Float32Array(indices.length) };
  indices.forEach((k, i) => {
    out.boxes.set(found.boxes.subarray(4 * k, 4 * k + 4), 4 * i);
    out.classIds[i] = found.classIds[k]!;
    out.scores[i] = found.scores[k]!;
  });
  return out;
}
