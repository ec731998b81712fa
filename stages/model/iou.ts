// Intersection over union of two box sets, [y1, x1, y2, x2] in any common unit. Area is (y2-y1)*(x2-x1) with no +1,
// as Matterport's compute_overlaps and tf.image.nonMaxSuppression, so boxes of zero height or width have zero area.

/** IoU matrix: a Float32Array [N * 4], b Float32Array [M * 4] -> Float32Array [N * M], row-major (a's box i, b's box j). */
export function iouMatrix(a: Float32Array, b: Float32Array): Float32Array {
  const n = a.length / 4;
  const m = b.length / 4;
  const out = new Float32Array(n * m);
  const areasB = boxAreas(b);
  for (let i = 0; i < n; i++) {
    const ay1 = a[4 * i]!;
    const ax1 = a[4 * i + 1]!;
    const ay2 = a[4 * i + 2]!;
    const ax2 = a[4 * i + 3]!;
    const areaA = Math.max(0, ay2 - ay1) * Math.max(0, ax2 - ax1);
    for (let j = 0; j < m; j++) {
      const ih = Math.min(ay2, b[4 * j + 2]!) - Math.max(ay1, b[4 * j]!);
      if (ih <= 0) continue;
      const iw = Math.min(ax2, b[4 * j + 3]!) - Math.max(ax1, b[4 * j + 1]!);
      if (iw <= 0) continue;
      const intersection = ih * iw;
      out[i * m + j] = intersection / (areaA + areasB[j]! - intersection);
    }
  }
  return out;
}

/** Area of each box of boxes [N * 4] (0 for inverted boxes). */
export function boxAreas(boxes: Float32Array): Float32Array {
  const out = new Float32Array(boxes.length / 4);
  for (let i = 0; i < out.length; i++) {
    out[i] = Math.max(0, boxes[4 * i + 2]! - boxes[4 * i]!) * Math.max(0, boxes[4 * i + 3]! - boxes[4 * i + 1]!);
  }
  return out;
}
