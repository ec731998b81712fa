// Greedy non-maximum suppression, the same selection as tf.image.nonMaxSuppression (tfjs-core's
// nonMaxSuppressionV3Impl, which the cpu and webgpu backends run on the host) without its cost: that one checks
// each candidate against every box kept so far through a function that allocates two subarrays per pair. On the
// lent H100 the recipe's proposals (6,000 boxes an image, up to 2,000 kept) spent ~0.5 s an image there, most of
// a training step (session 6's CPU profile of the device run).
//
// Here a candidate is checked only against kept boxes that share a cell of a uniform grid with it: for an IoU
// threshold t > 0, IoU >= t needs a positive intersection, so boxes in no common cell can never suppress each
// other. The IoU itself is computed with the same float64 operations in the same order as tfjs' (its
// intersectionOverUnion), so each comparison with the threshold, and therefore the kept list, is the same: by
// descending score, equal scores by ascending index, boxes with a NaN score or a -Infinity one never kept, at most
// maxOutput of them. Inputs tfjs would treat in its NaN-propagating ways (a non-finite coordinate) go to tfjs'
// own implementation; so does a threshold of 0, where every pair suppresses (grid or not, one box is kept).

/** Boxes [N * 4] as [y1, x1, y2, x2] (either corner order), scores [N]: the kept indices, best first. */
export function greedyNms(boxes: Float32Array, scores: Float32Array, iouThreshold: number, maxOutput: number, fallback: () => Int32Array): Int32Array {
  const n = scores.length;
  if (!(iouThreshold > 0) || !boxes.every(Number.isFinite)) return fallback();
  const order = candidatesByScore(scores);
  const ymin = new Float64Array(n);
  const xmin = new Float64Array(n);
  const ymax = new Float64Array(n);
  const xmax = new Float64Array(n);
  const area = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const y1 = boxes[4 * i]!, x1 = boxes[4 * i + 1]!, y2 = boxes[4 * i + 2]!, x2 = boxes[4 * i + 3]!;
    ymin[i] = Math.min(y1, y2);
    xmin[i] = Math.min(x1, x2);
    ymax[i] = Math.max(y1, y2);
    xmax[i] = Math.max(x1, x2);
    area[i] = (ymax[i]! - ymin[i]!) * (xmax[i]! - xmin[i]!);
  }
  const grid = new Grid(ymin, xmin, ymax, xmax, area, order);
  const kept: number[] = [];
  const seen = new Int32Array(n).fill(-1); // the candidate that last compared against each kept box
  for (let c = 0; c < order.length && kept.length < maxOutput; c++) {
    const i = order[c]!;
    // A box of no area has IoU 0 with everything (tfjs' rule): never suppressed, never suppressing.
    if (!(area[i]! > 0)) {
      kept.push(i);
      continue;
    }
    let suppressed = false;
    grid.visit(i, (j) => {
      if (seen[j] === c) return false;
      seen[j] = c;
      // tfjs' intersectionOverUnion(boxes, candidate, kept), operation for operation.
      const intersection = Math.max(Math.min(ymax[i]!, ymax[j]!) - Math.max(ymin[i]!, ymin[j]!), 0.0) *
        Math.max(Math.min(xmax[i]!, xmax[j]!) - Math.max(xmin[i]!, xmin[j]!), 0.0);
      suppressed = intersection / (area[i]! + area[j]! - intersection) >= iouThreshold;
      return suppressed;
    });
    if (suppressed) continue;
    kept.push(i);
    grid.add(i);
  }
  return Int32Array.from(kept);
}

/** Indices of the boxes tfjs would consider (score > -Infinity: not NaN), by descending score, ties by index. */
function candidatesByScore(scores: Float32Array): Int32Array {
  const indices: number[] = [];
  for (let i = 0; i < scores.length; i++) if (scores[i]! > Number.NEGATIVE_INFINITY) indices.push(i);
  // Infinity - Infinity is NaN, which || treats as a tie: by index, as tfjs' comparator does.
  indices.sort((a, b) => scores[b]! - scores[a]! || a - b);
  return Int32Array.from(indices);
}

/** Cells a box may span before it is kept in a list every candidate checks instead. */
const MAX_CELLS = 64;
/** Cells along each axis at most (the grid of a few huge boxes among many small ones stays small). */
const MAX_CELLS_PER_AXIS = 256;

/** Kept boxes by the grid cells their extent touches (closed intervals: boxes that overlap share a cell). */
class Grid {
  private readonly y0: number;
  private readonly x0: number;
  private readonly cell: number;
  private readonly rows: number;
  private readonly cols: number;
  private readonly cells: number[][];
  /** Kept boxes spanning more than MAX_CELLS cells: every candidate checks them. */
  private readonly large: number[] = [];
  /** Every kept box, for a candidate spanning more than MAX_CELLS cells. */
  private readonly all: number[] = [];

  constructor(
    private readonly ymin: Float64Array,
    private readonly xmin: Float64Array,
    private readonly ymax: Float64Array,
    private readonly xmax: Float64Array,
    area: Float64Array,
    order: Int32Array,
  ) {
    let y0 = Infinity, x0 = Infinity, y1 = -Infinity, x1 = -Infinity;
    const sides: number[] = [];
    for (const i of order) {
      if (!(area[i]! > 0)) continue;
      y0 = Math.min(y0, ymin[i]!);
      x0 = Math.min(x0, xmin[i]!);
      y1 = Math.max(y1, ymax[i]!);
      x1 = Math.max(x1, xmax[i]!);
      sides.push(Math.max(ymax[i]! - ymin[i]!, xmax[i]! - xmin[i]!));
    }
    const extent = Math.max(y1 - y0, x1 - x0, 0);
    sides.sort((a, b) => a - b);
    // Cells about the size of a typical box: it spans ~4 cells, and a cell holds few kept boxes.
    const median = sides[sides.length >> 1] ?? 1;
    this.cell = Math.max(median, extent / MAX_CELLS_PER_AXIS, Number.MIN_VALUE);
    this.y0 = Number.isFinite(y0) ? y0 : 0;
    this.x0 = Number.isFinite(x0) ? x0 : 0;
    this.rows = Math.max(1, Math.floor((y1 - this.y0) / this.cell) + 1);
    this.cols = Math.max(1, Math.floor((x1 - this.x0) / this.cell) + 1);
    this.cells = Array.from({ length: this.rows * this.cols }, () => []);
  }

  add(i: number): void {
    this.all.push(i);
    const [r0, r1, c0, c1] = this.span(i);
    if ((r1 - r0 + 1) * (c1 - c0 + 1) > MAX_CELLS) {
      this.large.push(i);
      return;
    }
    for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) this.cells[r * this.cols + c]!.push(i);
  }

  /** Calls `check` with each kept box that may overlap box i (some more than once), until it returns true. */
  visit(i: number, check: (j: number) => boolean): void {
    const [r0, r1, c0, c1] = this.span(i);
    if ((r1 - r0 + 1) * (c1 - c0 + 1) > MAX_CELLS) {
      for (const j of this.all) if (check(j)) return; // a large candidate: every kept box
      return;
    }
    for (const j of this.large) if (check(j)) return;
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        for (const j of this.cells[r * this.cols + c]!) if (check(j)) return;
      }
    }
  }

  /** The rows and columns of cells box i touches, clamped to the grid. */
  private span(i: number): [number, number, number, number] {
    const clampRow = (v: number) => Math.min(this.rows - 1, Math.max(0, Math.floor((v - this.y0) / this.cell)));
    const clampCol = (v: number) => Math.min(this.cols - 1, Math.max(0, Math.floor((v - this.x0) / this.cell)));
    return [clampRow(this.ymin[i]!), clampRow(this.ymax[i]!), clampCol(this.xmin[i]!), clampCol(this.xmax[i]!)];
  }
}
