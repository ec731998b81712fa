// Pastes a mask predicted in ROI space (M x M probabilities) back into an image at its box's size, bilinearly,
// then thresholds it (Matterport's unmold_mask; the recipe's threshold is 0.35). Pixel-centre convention, the
// inverse of detection-targets' maskTarget: image pixel r (centre r + 0.5) reads the mask at
// ((r + 0.5 - y1) / (y2 - y1)) * M - 0.5, clamped to the mask's edge; pixels whose centre is outside the box are 0.

/** Bilinear value of src [h * w] at (y, x) in pixel-index coordinates, clamped to the edges. */
export function sampleBilinearClamped(src: ArrayLike<number>, h: number, w: number, y: number, x: number): number {
  const yc = Math.min(Math.max(y, 0), h - 1);
  const xc = Math.min(Math.max(x, 0), w - 1);
  const y0 = Math.floor(yc);
  const x0 = Math.floor(xc);
  const y1 = Math.min(y0 + 1, h - 1);
  const x1 = Math.min(x0 + 1, w - 1);
  const fy = yc - y0;
  const fx = xc - x0;
  const top = src[y0 * w + x0]! * (1 - fx) + src[y0 * w + x1]! * fx;
  const bottom = src[y1 * w + x0]! * (1 - fx) + src[y1 * w + x1]! * fx;
  return top * (1 - fy) + bottom * fy;
}

/**
 * mask: probabilities [M * M] for `box` ([y1, x1, y2, x2] pixels of the target image, fractional allowed).
 * Returns a binary Uint8Array [height * width] (1 where the resized probability >= threshold).
 */
export function pasteMask(mask: ArrayLike<number>, maskSize: number, box: ArrayLike<number>, height: number, width: number, threshold: number): Uint8Array {
  if (mask.length !== maskSize * maskSize) throw new Error(`pasteMask: mask has ${mask.length} values, expected ${maskSize}x${maskSize}`);
  const out = new Uint8Array(height * width);
  const [y1, x1, y2, x2] = [box[0]!, box[1]!, box[2]!, box[3]!];
  const bh = y2 - y1;
  const bw = x2 - x1;
  if (!(bh > 0 && bw > 0)) return out;
  const rowStart = Math.max(0, Math.floor(y1));
  const rowEnd = Math.min(height, Math.ceil(y2));
  const colStart = Math.max(0, Math.floor(x1));
  const colEnd = Math.min(width, Math.ceil(x2));
  for (let r = rowStart; r < rowEnd; r++) {
    const cy = r + 0.5;
    if (cy < y1 || cy > y2) continue;
    const u = ((cy - y1) / bh) * maskSize - 0.5;
    for (let c = colStart; c < colEnd; c++) {
      const cx = c + 0.5;
      if (cx < x1 || cx > x2) continue;
      const v = ((cx - x1) / bw) * maskSize - 0.5;
      if (sampleBilinearClamped(mask, maskSize, maskSize, u, v) >= threshold) out[r * width + c] = 1;
    }
  }
  return out;
}
