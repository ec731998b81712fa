// Polygon filling for the external annotations: a scanline rasteriser with an explicit pixel-centre rule.
//
// Convention: vertex coordinates are in pixel units with pixel (column c, row r) centred at (c, r) — the
// convention of skimage.draw.polygon and of OpenCV's integer vertices, so our masks sit where the original
// solution's did. A pixel is filled when its centre lies inside the polygon by the even-odd rule; a centre
// exactly on an edge counts when the edge is a left or top edge (half-open spans [left, right) on rows
// [top, bottom)), so two polygons sharing an edge never both claim its pixels and a w x h axis-aligned
// rectangle fills exactly w·h pixels.
//
// Why not OpenCV.js fillPoly (which the original used, after rounding vertices to integers): fillPoly also
// paints the outline itself, so every mask grows by about half a pixel all round, and rounding the sub-pixel
// vertices shifts outlines by up to half a pixel; it would also load ~10 MB of wasm for a 40-line loop.
// Filled areas here match the polygons' areas, which the hand-computed tests check.
import type { Point } from './external-annotations.js';

/**
 * Writes `value` into every pixel of `target` whose centre is inside the polygon (later calls overwrite
 * earlier ones). target: [height * width], row-major. Returns the number of pixels written. When
 * `overwritten` is given ([height * width]), pixels that already held another label are marked 1 in it.
 */
export function fillPolygon(
  target: Uint16Array,
  width: number,
  height: number,
  polygon: readonly Point[],
  value: number,
  overwritten?: Uint8Array,
): number {
  if (polygon.length < 3) return 0;
  let minY = Infinity;
  let maxY = -Infinity;
  for (const p of polygon) {
    minY = Math.min(minY, p.y);
    maxY = Math.max(maxY, p.y);
  }
  const firstRow = Math.max(0, Math.ceil(minY));
  const lastRow = Math.min(height - 1, Math.ceil(maxY) - 1);
  const crossings: number[] = [];
  let written = 0;
  for (let row = firstRow; row <= lastRow; row++) {
    crossings.length = 0;
    for (let i = 0; i < polygon.length; i++) {
      const a = polygon[i]!;
      const b = polygon[(i + 1) % polygon.length]!;
      // Half-open in y: an edge covers rows with a.y <= row < b.y (or the reverse), so a vertex on the
      // scanline is counted once and horizontal edges never.
      if ((a.y <= row && row < b.y) || (b.y <= row && row < a.y)) {
        crossings.push(a.x + ((row - a.y) * (b.x - a.x)) / (b.y - a.y));
      }
    }
    crossings.sort((p, q) => p - q);
    for (let k = 0; k + 1 < crossings.length; k += 2) {
      // Columns whose centre c satisfies left <= c < right.
      const from = Math.max(0, Math.ceil(crossings[k]!));
      const to = Math.min(width - 1, Math.ceil(crossings[k + 1]!) - 1);
      for (let column = from; column <= to; column++) {
        const p = row * width + column;
        if (overwritten && target[p] !== 0 && target[p] !== value) overwritten[p] = 1;
        target[p] = value;
      }
      if (to >= from) written += to - from + 1;
    }
  }
  return written;
}
