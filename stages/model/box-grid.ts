// A uniform grid of boxes for overlap queries: a box is listed in every cell its closed extent touches, so two
// boxes with a positive intersection always share a cell (an interior point of the intersection lies in some
// cell, and floor() is monotonic). Cells are about the size of a typical box, so a box spans a few cells and a
// cell holds a few boxes. Boxes spanning more than MAX_CELLS cells are kept aside and visited by every query;
// a query box that large visits every box instead. Used where IoU > 0 needs an overlap: NMS (greedy-nms.ts) and
// matching anchors or proposals to ground truth (box-matcher.ts).

/** Cells a box may span before it is kept aside (and a query box before it visits everything). */
const MAX_CELLS = 64;
/** Cells along each axis at most (a few huge boxes among many small ones keep the grid small). */
const MAX_CELLS_PER_AXIS = 256;

/** Boxes as four coordinate arrays, min <= max on each axis. */
export interface BoxSides {
  ymin: ArrayLike<number>;
  xmin: ArrayLike<number>;
  ymax: ArrayLike<number>;
  xmax: ArrayLike<number>;
}

/** Sides of boxes [N * 4] given as [y1, x1, y2, x2] in either corner order (tfjs' NMS takes min and max too). */
export function boxSides(boxes: Float32Array): BoxSides & { ymin: Float64Array; xmin: Float64Array; ymax: Float64Array; xmax: Float64Array } {
  const n = boxes.length / 4;
  const sides = { ymin: new Float64Array(n), xmin: new Float64Array(n), ymax: new Float64Array(n), xmax: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const y1 = boxes[4 * i]!, x1 = boxes[4 * i + 1]!, y2 = boxes[4 * i + 2]!, x2 = boxes[4 * i + 3]!;
    sides.ymin[i] = Math.min(y1, y2);
    sides.xmin[i] = Math.min(x1, x2);
    sides.ymax[i] = Math.max(y1, y2);
    sides.xmax[i] = Math.max(x1, x2);
  }
  return sides;
}

export class BoxGrid {
  private readonly y0: number;
  private readonly x0: number;
  private readonly cell: number;
  private readonly rows: number;
  private readonly cols: number;
  private readonly cells: number[][];
  private readonly large: number[] = [];
  private readonly all: number[] = [];

  /** A grid sized to the given members of `boxes` (finite sides; the boxes later added should be among them). */
  constructor(private readonly boxes: BoxSides, members: Iterable<number>) {
    let y0 = Infinity, x0 = Infinity, y1 = -Infinity, x1 = -Infinity;
    const sizes: number[] = [];
    for (const i of members) {
      y0 = Math.min(y0, boxes.ymin[i]!);
      x0 = Math.min(x0, boxes.xmin[i]!);
      y1 = Math.max(y1, boxes.ymax[i]!);
      x1 = Math.max(x1, boxes.xmax[i]!);
      sizes.push(Math.max(boxes.ymax[i]! - boxes.ymin[i]!, boxes.xmax[i]! - boxes.xmin[i]!));
    }
    if (sizes.length === 0) [y0, x0, y1, x1] = [0, 0, 0, 0];
    const sorted = Float64Array.from(sizes).sort(); // typed: numeric order, no comparator calls
    const extent = Math.max(y1 - y0, x1 - x0);
    this.cell = Math.max(sorted[sorted.length >> 1] ?? 1, extent / MAX_CELLS_PER_AXIS, Number.MIN_VALUE);
    this.y0 = y0;
    this.x0 = x0;
    this.rows = Math.floor((y1 - y0) / this.cell) + 1;
    this.cols = Math.floor((x1 - x0) / this.cell) + 1;
    this.cells = Array.from({ length: this.rows * this.cols }, () => []);
  }

  /** Lists box i of the grid's boxes. */
  add(i: number): void {
    this.all.push(i);
    const b = this.boxes;
    const r0 = this.row(b.ymin[i]!), r1 = this.row(b.ymax[i]!), c0 = this.col(b.xmin[i]!), c1 = this.col(b.xmax[i]!);
    if ((r1 - r0 + 1) * (c1 - c0 + 1) > MAX_CELLS) {
      this.large.push(i);
      return;
    }
    for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) this.cells[r * this.cols + c]!.push(i);
  }

  /**
   * Calls `check` with every listed box that may intersect the query box (each at least once, some more than once),
   * until it returns true.
   */
  visit(ymin: number, xmin: number, ymax: number, xmax: number, check: (j: number) => boolean): void {
    const r0 = this.row(ymin), r1 = this.row(ymax), c0 = this.col(xmin), c1 = this.col(xmax);
    if ((r1 - r0 + 1) * (c1 - c0 + 1) > MAX_CELLS) {
      for (const j of this.all) if (check(j)) return;
      return;
    }
    for (const j of this.large) if (check(j)) return;
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        for (const j of this.cells[r * this.cols + c]!) if (check(j)) return;
      }
    }
  }

  /** The row of cells a y coordinate falls in, clamped to the grid (NaN for NaN: no cell). */
  private row(y: number): number {
    return Math.min(this.rows - 1, Math.max(0, Math.floor((y - this.y0) / this.cell)));
  }

  private col(x: number): number {
    return Math.min(this.cols - 1, Math.max(0, Math.floor((x - this.x0) / this.cell)));
  }
}
