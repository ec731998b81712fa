// From accepted seams to 2x2 mosaics: tiles t0 t1 / t2 t3 (TL, TR, BL, BR) with four seams
//   t0 -right-> t1,  t2 -right-> t3,  t0 -below-> t2,  t1 -below-> t3.
//
// Any three accepted seams name all four tiles; the candidate is then checked as a whole:
//   - consistent: no seam of the square is contradicted (a tile's accepted partner in that direction is a
//     different tile), and every seam, accepted or not, is continuous (ratio <= maxSeamRatio) — the
//     fourth seam may be one that was merely ambiguous on its own (flat background on both sides);
//   - disjoint: a tile goes into at most one mosaic; better candidates (4 accepted seams before 3, then the
//     smaller summed ratio) choose first.
import type { Direction, Seams } from './mosaic-borders.js';

export type Quad = [number, number, number, number];

export type QuadRejection = 'inconsistent' | 'discontinuous-fourth-seam' | 'tile-already-used';

export interface MosaicChoice {
  tiles: Quad;
  acceptedSeams: number;
  ratioSum: number;
}

const squareSeams = (q: Quad): [number, number, Direction][] => [
  [q[0], q[1], 'right'],
  [q[2], q[3], 'right'],
  [q[0], q[2], 'below'],
  [q[1], q[3], 'below'],
];

/** Every square that three accepted seams determine, deduplicated. */
function candidates(seams: Seams): Quad[] {
  const found = new Map<string, Quad>();
  const add = (q: (number | undefined)[]): void => {
    if (q.some((t) => t === undefined) || new Set(q).size !== 4) return;
    found.set(q.join(','), q as Quad);
  };
  const { next, previous } = seams;
  // Three seams always include a corner pair; walk from each corner through its two seams.
  for (const [t0, t1] of next.right) {
    const t2 = next.below.get(t0);
    if (t2 !== undefined) add([t0, t1, t2, next.right.get(t2) ?? next.below.get(t1)]);
    const t3 = next.below.get(t1);
    if (t3 !== undefined) add([t0, t1, previous.right.get(t3) ?? next.below.get(t0), t3]);
  }
  for (const [t2, t3] of next.right) {
    const t0 = previous.below.get(t2);
    if (t0 !== undefined) add([t0, next.right.get(t0) ?? previous.below.get(t3), t2, t3]);
    const t1 = previous.below.get(t3);
    if (t1 !== undefined) add([previous.right.get(t1) ?? previous.below.get(t2), t1, t2, t3]);
  }
  return [...found.values()];
}

/**
 * Chooses tile-disjoint, consistent 2x2 mosaics and counts why the other candidates were rejected.
 */
export function chooseMosaics(
  seams: Seams,
  maxSeamRatio: number,
): { mosaics: MosaicChoice[]; candidates: number; rejected: Record<QuadRejection, number> } {
  const rejected: Record<QuadRejection, number> = { inconsistent: 0, 'discontinuous-fourth-seam': 0, 'tile-already-used': 0 };
  const scored: MosaicChoice[] = [];
  const all = candidates(seams);
  for (const tiles of all) {
    let acceptedSeams = 0;
    let ratioSum = 0;
    let verdict: QuadRejection | undefined;
    for (const [a, b, direction] of squareSeams(tiles)) {
      const ratio = seams.ratio(a, b, direction);
      ratioSum += ratio;
      if (seams.next[direction].get(a) === b) {
        acceptedSeams++;
        continue;
      }
      const forward = seams.next[direction].get(a);
      const backward = seams.previous[direction].get(b);
      if ((forward !== undefined && forward !== b) || (backward !== undefined && backward !== a)) verdict ??= 'inconsistent';
      else if (!(ratio <= maxSeamRatio)) verdict ??= 'discontinuous-fourth-seam';
    }
    if (verdict) rejected[verdict]++;
    else scored.push({ tiles, acceptedSeams, ratioSum });
  }
  scored.sort((p, q) => q.acceptedSeams - p.acceptedSeams || p.ratioSum - q.ratioSum || p.tiles[0] - q.tiles[0]);
  const used = new Set<number>();
  const mosaics: MosaicChoice[] = [];
  for (const choice of scored) {
    if (choice.tiles.some((t) => used.has(t))) {
      rejected['tile-already-used']++;
      continue;
    }
    choice.tiles.forEach((t) => used.add(t));
    mosaics.push(choice);
  }
  return { mosaics, candidates: all.length, rejected };
}
