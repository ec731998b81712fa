// Box deltas (Matterport's box_refinement / apply_box_deltas; torchvision's BoxCoder):
//   h = y2 - y1, w = x2 - x1, cy = y1 + h/2, cx = x1 + w/2
//   delta = [(gcy - cy) / h, (gcx - cx) / w, log(gh / h), log(gw / w)] / stdDev
// Boxes are [y1, x1, y2, x2]; the deltas are scale-free, so pixels and normalized boxes give the same deltas.
import * as tf from '@tensorflow/tfjs';

export type StdDev = readonly [number, number, number, number];

/** Largest dh/dw applied when decoding (torchvision's log(1000/16)): keeps exp() finite for wild early deltas. */
export const maxLogScale = Math.log(1000 / 16);

/** Encodes `boxes` relative to `references`; both Float32Array [N * 4]; returns deltas [N * 4] already / stdDev. */
export function encodeBoxes(references: Float32Array, boxes: Float32Array, stdDev: StdDev): Float32Array {
  if (references.length !== boxes.length) throw new Error(`encodeBoxes: ${references.length / 4} references for ${boxes.length / 4} boxes`);
  const out = new Float32Array(boxes.length);
  for (let i = 0; i < boxes.length; i += 4) {
    const h = references[i + 2]! - references[i]!;
    const w = references[i + 3]! - references[i + 1]!;
    const cy = references[i]! + 0.5 * h;
    const cx = references[i + 1]! + 0.5 * w;
    const gh = boxes[i + 2]! - boxes[i]!;
    const gw = boxes[i + 3]! - boxes[i + 1]!;
    const gcy = boxes[i]! + 0.5 * gh;
    const gcx = boxes[i + 1]! + 0.5 * gw;
    out[i] = (gcy - cy) / h / stdDev[0];
    out[i + 1] = (gcx - cx) / w / stdDev[1];
    out[i + 2] = Math.log(gh / h) / stdDev[2];
    out[i + 3] = Math.log(gw / w) / stdDev[3];
  }
  return out;
}

/** Applies deltas (as the network predicts them, i.e. / stdDev) to references; Float32Array [N * 4] each. */
export function decodeBoxes(references: Float32Array, deltas: Float32Array, stdDev: StdDev): Float32Array {
  if (references.length !== deltas.length) throw new Error(`decodeBoxes: ${references.length / 4} references for ${deltas.length / 4} deltas`);
  const out = new Float32Array(deltas.length);
  for (let i = 0; i < deltas.length; i += 4) {
    const h = references[i + 2]! - references[i]!;
    const w = references[i + 3]! - references[i + 1]!;
    const cy = references[i]! + 0.5 * h + deltas[i]! * stdDev[0] * h;
    const cx = references[i + 1]! + 0.5 * w + deltas[i + 1]! * stdDev[1] * w;
    const nh = h * Math.exp(Math.min(deltas[i + 2]! * stdDev[2], maxLogScale));
    const nw = w * Math.exp(Math.min(deltas[i + 3]! * stdDev[3], maxLogScale));
    out[i] = cy - 0.5 * nh;
    out[i + 1] = cx - 0.5 * nw;
    out[i + 2] = cy + 0.5 * nh;
    out[i + 3] = cx + 0.5 * nw;
  }
  return out;
}

/** Tensor form of decodeBoxes: references [N, 4], deltas [N, 4] -> boxes [N, 4]. */
export function decodeBoxesTensor(references: tf.Tensor2D, deltas: tf.Tensor2D, stdDev: StdDev): tf.Tensor2D {
  return tf.tidy(() => {
    const [y1, x1, y2, x2] = tf.split(references, 4, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    const scaled = deltas.mul(tf.tensor1d([...stdDev]));
    const [dy, dx, dh, dw] = tf.split(scaled, 4, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    const h = y2.sub(y1);
    const w = x2.sub(x1);
    const cy = y1.add(h.mul(0.5)).add(dy.mul(h));
    const cx = x1.add(w.mul(0.5)).add(dx.mul(w));
    const nh = h.mul(tf.exp(tf.minimum(dh, maxLogScale)));
    const nw = w.mul(tf.exp(tf.minimum(dw, maxLogScale)));
    return tf.concat([cy.sub(nh.mul(0.5)), cx.sub(nw.mul(0.5)), cy.add(nh.mul(0.5)), cx.add(nw.mul(0.5))], 1) as tf.Tensor2D;
  });
}

/** Clips boxes [N * 4] in place to the window [y1, x1, y2, x2]; returns the same array. */
export function clipBoxes(boxes: Float32Array, window: readonly [number, number, number, number]): Float32Array {
  for (let i = 0; i < boxes.length; i += 4) {
    boxes[i] = Math.min(Math.max(boxes[i]!, window[0]), window[2]);
    boxes[i + 1] = Math.min(Math.max(boxes[i + 1]!, window[1]), window[3]);
    boxes[i + 2] = Math.min(Math.max(boxes[i + 2]!, window[0]), window[2]);
    boxes[i + 3] = Math.min(Math.max(boxes[i + 3]!, window[1]), window[3]);
  }
  return boxes;
}
