// Stacking four tiles 2x2 ([0 1; 2 3]) and joining the nuclei that the tile seams cut in two.
//
// Seam merge, as in the original solution (after killthekitten's rebuild_mosaics): first across the vertical
// centre line, then across the horizontal one; a label touching the seam from the left (top) is merged with
// the label across the seam it shares the most seam pixels with. The original OR-ed a right-hand mask into
// every left-hand mask that chose it (overlapping duplicates); a label map cannot hold overlap, so here each
// right-hand (bottom) label joins only the one left-hand (top) label that touches it most among those that
// chose it; the others stay separate nuclei.
import type { Image8, LabelMap } from '../imaging/dataset.js';
import { compactLabels } from '../imaging/components.js';

/** Stacks four equally sized images: [0 1; 2 3]. */
export function stackImages(tiles: readonly [Image8, Image8, Image8, Image8]): Image8 {
  const { width, height, channels } = tiles[0];
  const out = new Uint8Array(4 * width * height * channels);
  const line = width * channels;
  tiles.forEach((tile, q) => {
    const x0 = (q % 2) * line;
    const y0 = Math.floor(q / 2) * height;
    for (let y = 0; y < height; y++) out.set(tile.data.subarray(y * line, (y + 1) * line), (y0 + y) * 2 * line + x0);
  });
  return { width: 2 * width, height: 2 * height, channels, data: out };
}

/** Stacks four label maps [0 1; 2 3], offsetting labels so that every tile's nuclei stay distinct. */
export function stackLabels(tiles: readonly [LabelMap, LabelMap, LabelMap, LabelMap]): LabelMap {
  const { width, height } = tiles[0];
  const total = tiles.reduce((sum, t) => sum + t.count, 0);
  if (total > 0xffff) throw new Error(`${total} nuclei do not fit a 16-bit label map`);
  const data = new Uint16Array(4 * width * height);
  let offset = 0;
  tiles.forEach((tile, q) => {
    const x0 = (q % 2) * width;
    const y0 = Math.floor(q / 2) * height;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const label = tile.data[y * width + x]!;
        if (label !== 0) data[(y0 + y) * 2 * width + x0 + x] = label + offset;
      }
    }
    offset += tile.count;
  });
  return { width: 2 * width, height: 2 * height, data, count: total };
}

/**
 * Merges labels across one centre line of a stacked map, in place. `axis` 'vertical' joins left/right
 * across column width/2; 'horizontal' joins top/bottom across row height/2. Returns how many merges.
 */
export function mergeAcrossCentre(labels: LabelMap, axis: 'vertical' | 'horizontal'): number {
  const { width, height, data } = labels;
  const vertical = axis === 'vertical';
  const length = vertical ? height : width;
  const centre = vertical ? Math.floor(width / 2) : Math.floor(height / 2);
  // Seam pixel pairs (before, after) along the line.
  const before = (i: number): number => (vertical ? data[i * width + centre - 1]! : data[(centre - 1) * width + i]!);
  const after = (i: number): number => (vertical ? data[i * width + centre]! : data[centre * width + i]!);
  const contacts = new Map<number, Map<number, number>>();
  for (let i = 0; i < length; i++) {
    const a = before(i);
    const b = after(i);
    if (a === 0 || b === 0 || a === b) continue;
    const row = contacts.get(a) ?? new Map<number, number>();
    row.set(b, (row.get(b) ?? 0) + 1);
    contacts.set(a, row);
  }
  // Each "before" label picks its most-touched partner; each partner keeps the suitor touching it most.
  const suitor = new Map<number, { label: number; contact: number }>();
  for (const [a, row] of [...contacts].sort(([p], [q]) => p - q)) {
    let best = 0;
    let contact = 0;
    for (const [b, n] of row) if (n > contact || (n === contact && b < best)) [best, contact] = [b, n];
    const current = suitor.get(best);
    if (!current || contact > current.contact) suitor.set(best, { label: a, contact });
  }
  const into = new Map<number, number>();
  for (const [b, { label }] of suitor) into.set(b, label);
  if (into.size === 0) return 0;
  // A label lying across the line in one place can both absorb and be absorbed: follow chains to the end.
  const resolve = (label: number): number => {
    let target = label;
    for (let steps = 0; into.has(target) && steps <= into.size; steps++) target = into.get(target)!;
    return target;
  };
  for (let p = 0; p < data.length; p++) {
    const target = into.has(data[p]!) ? resolve(data[p]!) : undefined;
    if (target !== undefined) data[p] = target;
  }
  return into.size;
}

/** Stacks the tiles' label maps and joins nuclei across both seams: left/right first, then top/bottom. */
export function mergeMosaicLabels(tiles: readonly [LabelMap, LabelMap, LabelMap, LabelMap]): { labels: LabelMap; merged: number } {
  const stacked = stackLabels(tiles);
  const merged = mergeAcrossCentre(stacked, 'vertical') + mergeAcrossCentre(stacked, 'horizontal');
  return { labels: compactLabels(stacked), merged };
}
