// Border continuity between tiles: does tile B continue tile A across A's right (or bottom) edge?
//
// Many DSB2018 training images are tiles cut from one larger image. Across a true seam the pixel columns
// continue the way neighbouring columns inside an image do, so the score of "B right of A" is
//
//   seamRatio = mean |A[:, W-1] - B[:, 0]|  /  typical |col - next col| inside A and B (at their edges)
//
// (rows for "B below A"), on grey values (mean of the channels). A true seam scores about 1; an unrelated
// pair scores several times more — unless both edges are flat (e.g. empty black background), where every
// candidate scores about 1 and the match means nothing. So a seam is accepted only when it is
//   1. continuous:   seamRatio <= maxSeamRatio;
//   2. unambiguous:  the second-best candidate for either edge scores at least `minMargin` times worse;
//   3. mutual:       B is A's best right neighbour and A is B's best left neighbour;
//   4. informative:  neither border is flat (standard deviation along it below `minEdgeSpread` grey levels).
import type { Image8 } from '../imaging/dataset.js';

export type Direction = 'right' | 'below';

/** Grey profiles along the four borders and the line just inside each. */
export interface TileEdges {
  id: string;
  width: number;
  height: number;
  channels: number;
  /** Modality class when the manifest gives one: tiles of one image share it. */
  modality: string | undefined;
  left: Float32Array;
  left2: Float32Array;
  right: Float32Array;
  right2: Float32Array;
  top: Float32Array;
  top2: Float32Array;
  bottom: Float32Array;
  bottom2: Float32Array;
}

/** Reads the border lines of an image (grey = mean of colour channels, alpha ignored). */
export function tileEdges(id: string, image: Image8, modality?: string): TileEdges {
  const { width, height, channels, data } = image;
  const colours = channels === 4 ? 3 : channels;
  const grey = (x: number, y: number): number => {
    let sum = 0;
    for (let c = 0; c < colours; c++) sum += data[(y * width + x) * channels + c]!;
    return sum / colours;
  };
  const column = (x: number): Float32Array => Float32Array.from({ length: height }, (_, y) => grey(x, y));
  const row = (y: number): Float32Array => Float32Array.from({ length: width }, (_, x) => grey(x, y));
  const inner = (edge: number, step: number, size: number): number => Math.min(size - 1, Math.max(0, edge + step));
  return {
    id,
    width,
    height,
    channels,
    modality,
    left: column(0),
    left2: column(inner(0, 1, width)),
    right: column(width - 1),
    right2: column(inner(width - 1, -1, width)),
    top: row(0),
    top2: row(inner(0, 1, height)),
    bottom: row(height - 1),
    bottom2: row(inner(height - 1, -1, height)),
  };
}

function meanAbsDifference(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/** Whether two tiles could come from one image: same size, colour channels and modality. */
export function compatible(a: TileEdges, b: TileEdges): boolean {
  return a.width === b.width && a.height === b.height && a.channels === b.channels && (a.modality === undefined || b.modality === undefined || a.modality === b.modality);
}

/** The continuity ratio of "b is `direction` of a" (about 1 for a true seam). */
export function seamRatio(a: TileEdges, b: TileEdges, direction: Direction): number {
  const [aEdge, aInner, bEdge, bInner] =
    direction === 'right' ? [a.right, a.right2, b.left, b.left2] : [a.bottom, a.bottom2, b.top, b.top2];
  const seam = meanAbsDifference(aEdge, bEdge);
  const inside = (meanAbsDifference(aEdge, aInner) + meanAbsDifference(bEdge, bInner)) / 2;
  // Half a grey level of floor: 8-bit quantisation alone makes inner differences of that size.
  return seam / Math.max(inside, 0.5);
}

export interface SeamOptions {
  maxSeamRatio: number;
  minMargin: number;
  /** Grey-level standard deviation below which a border carries no information (default 2). */
  minEdgeSpread?: number;
}

export type EdgeVerdict = 'accepted' | 'no-compatible-tile' | 'flat' | 'discontinuous' | 'ambiguous' | 'not-mutual';

function spread(line: Float32Array): number {
  let mean = 0;
  for (const v of line) mean += v;
  mean /= line.length;
  let variance = 0;
  for (const v of line) variance += (v - mean) ** 2;
  return Math.sqrt(variance / line.length);
}

export interface Seams {
  /** Accepted seams per direction: from tile index -> to tile index (and the reverse map). */
  next: Record<Direction, Map<number, number>>;
  previous: Record<Direction, Map<number, number>>;
  /** Ratio of every scored pair, for checking the fourth seam of a 2x2: key `${a},${b},${direction}`. */
  ratio(a: number, b: number, direction: Direction): number;
  /** Why each tile's right and bottom edge did or did not get a seam: counts per verdict and direction. */
  verdicts: Record<Direction, Record<EdgeVerdict, number>>;
}

interface Best {
  index: number;
  ratio: number;
  second: number;
}

/**
 * Scores every compatible ordered pair in both directions and keeps the continuous, unambiguous, mutual
 * best matches. O(tiles² · border length) per direction, grouped by size so unrelated sizes never meet.
 */
export function findSeams(tiles: readonly TileEdges[], options: SeamOptions): Seams {
  const ratios = new Map<string, number>();
  const key = (a: number, b: number, direction: Direction): string => `${a},${b},${direction}`;
  const groups = new Map<string, number[]>();
  tiles.forEach((tile, index) => {
    const group = `${tile.width}x${tile.height}x${tile.channels}`;
    groups.set(group, [...(groups.get(group) ?? []), index]);
  });
  const next = { right: new Map<number, number>(), below: new Map<number, number>() };
  const previous = { right: new Map<number, number>(), below: new Map<number, number>() };
  const emptyVerdicts = (): Record<EdgeVerdict, number> => ({ accepted: 0, 'no-compatible-tile': 0, flat: 0, discontinuous: 0, ambiguous: 0, 'not-mutual': 0 });
  const minSpread = options.minEdgeSpread ?? 2;
  const verdicts = { right: emptyVerdicts(), below: emptyVerdicts() };

  for (const direction of ['right', 'below'] as const) {
    // Best partner of each tile's outgoing edge (a -> ?) and incoming edge (? -> b).
    const outgoing = new Map<number, Best>();
    const incoming = new Map<number, Best>();
    const offer = (table: Map<number, Best>, at: number, partner: number, ratio: number): void => {
      const best = table.get(at) ?? { index: -1, ratio: Infinity, second: Infinity };
      if (ratio < best.ratio) table.set(at, { index: partner, ratio, second: best.ratio });
      else if (ratio < best.second) table.set(at, { ...best, second: ratio });
      else if (!table.has(at)) table.set(at, best);
    };
    for (const members of groups.values()) {
      for (const a of members) {
        for (const b of members) {
          if (a === b || !compatible(tiles[a]!, tiles[b]!)) continue;
          const ratio = seamRatio(tiles[a]!, tiles[b]!, direction);
          ratios.set(key(a, b, direction), ratio);
          offer(outgoing, a, b, ratio);
          offer(incoming, b, a, ratio);
        }
      }
    }
    for (let a = 0; a < tiles.length; a++) {
      const best = outgoing.get(a);
      let verdict: EdgeVerdict;
      const [outEdge, inEdge] = direction === 'right' ? [tiles[a]!.right, tiles[best?.index ?? a]?.left] : [tiles[a]!.bottom, tiles[best?.index ?? a]?.top];
      // A zero ratio (identical borders) still needs a margin: compare against a floor, not zero.
      const margin = options.minMargin * Math.max(best?.ratio ?? 0, 0.05);
      if (!best || best.index < 0) verdict = 'no-compatible-tile';
      else if (spread(outEdge) < minSpread || spread(inEdge!) < minSpread) verdict = 'flat';
      else if (best.ratio > options.maxSeamRatio) verdict = 'discontinuous';
      else if (incoming.get(best.index)?.index !== a) verdict = 'not-mutual';
      else if (best.second < margin || incoming.get(best.index)!.second < margin) verdict = 'ambiguous';
      else verdict = 'accepted';
      verdicts[direction][verdict]++;
      if (verdict === 'accepted') {
        next[direction].set(a, best!.index);
        previous[direction].set(best!.index, a);
      }
    }
  }
  return {
    next,
    previous,
    ratio: (a, b, direction) => ratios.get(key(a, b, direction)) ?? Infinity,
    verdicts,
  };
}
