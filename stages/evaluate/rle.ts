// Kaggle's run-length encoding of a binary mask, as the DSB2018 submission format defines it: pixels are
// numbered column-major (top to bottom, then left to right) starting at 1, and a mask is the flat list of
// (start, length) pairs of its runs: `1 3 10 5` = pixels 1-3 and 10-14.
//
// Our masks are row-major (index y * width + x), so pixel (x, y) has the 1-based Kaggle number x * height + y + 1.
// Runs may cross from the bottom of one column to the top of the next: decoding handles that, and encoding
// merges such runs, so encode(decode(r)) is r for every canonical (touching runs merged) encoding.
import { StageError } from '../stage-error.js';

/** Parses `"1 3 10 5"` into numbers; `where` (e.g. "sub.csv:12") names the row in the error. Empty text = no runs. */
export function parseRleText(text: string, where: string): number[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  return trimmed.split(/\s+/).map((token) => {
    if (!/^\d+$/.test(token)) throw new StageError(`${where}: "${token}" in the run-length encoding is not a whole number`);
    return Number(token);
  });
}

/** Formats runs the way Kaggle's CSV wants them: space-separated. */
export function formatRle(runs: ArrayLike<number>): string {
  return Array.from(runs).join(' ');
}

/**
 * Checks that `runs` is a valid encoding for a width x height image: an even count of integers, every start
 * >= 1, every length >= 1, the last pixel of every run inside the image, runs sorted and not overlapping
 * (touching is fine). Throws a StageError that begins with `where` and names the offending pair.
 */
export function validateRle(runs: ArrayLike<number>, width: number, height: number, where: string): void {
  if (runs.length % 2 !== 0) {
    throw new StageError(`${where}: the run-length encoding has ${runs.length} numbers; it needs (start, length) pairs`);
  }
  const size = width * height;
  let previousEnd = 0; // last pixel (1-based) of the previous run
  for (let i = 0; i < runs.length; i += 2) {
    const start = runs[i]!;
    const length = runs[i + 1]!;
    const pair = `pair ${i / 2 + 1} (${start} ${length})`;
    if (!Number.isInteger(start) || start < 1) throw new StageError(`${where}: ${pair}: the start must be a whole number >= 1`);
    if (!Number.isInteger(length) || length < 1) throw new StageError(`${where}: ${pair}: the length must be a whole number >= 1`);
    const end = start + length - 1;
    if (end > size) {
      throw new StageError(`${where}: ${pair}: ends at pixel ${end}, beyond the ${width}x${height} image's ${size} pixels`);
    }
    if (start <= previousEnd) {
      throw new StageError(`${where}: ${pair}: starts at pixel ${start}, inside or before the previous run (which ends at ${previousEnd}); runs must be sorted and must not overlap`);
    }
    previousEnd = end;
  }
}

/** Decodes validated runs into a row-major 0/1 mask of width x height. mask: [height * width]. */
export function decodeRle(runs: ArrayLike<number>, width: number, height: number, where: string): Uint8Array {
  validateRle(runs, width, height, where);
  const mask = new Uint8Array(width * height);
  for (let i = 0; i < runs.length; i += 2) {
    const first = runs[i]! - 1;
    const last = first + runs[i + 1]!;
    for (let k = first; k < last; k++) {
      const x = Math.floor(k / height);
      mask[(k - x * height) * width + x] = 1;
    }
  }
  return mask;
}

/** Encodes a row-major mask (non-zero = foreground) of width x height. mask: [height * width]. */
export function encodeRle(mask: ArrayLike<number>, width: number, height: number): number[] {
  if (mask.length !== width * height) throw new Error(`mask has ${mask.length} pixels, expected ${width}x${height}`);
  const runs: number[] = [];
  let runStart = -1; // 1-based start of the open run, -1 when none is open
  let k = 0; // 0-based column-major index
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++, k++) {
      const on = mask[y * width + x] !== 0;
      if (on && runStart < 0) runStart = k + 1;
      else if (!on && runStart >= 0) {
        runs.push(runStart, k + 1 - runStart);
        runStart = -1;
      }
    }
  }
  if (runStart >= 0) runs.push(runStart, k + 1 - runStart);
  return runs;
}

/** Number of foreground pixels an encoding describes (the sum of its lengths). */
export function rleArea(runs: ArrayLike<number>): number {
  let area = 0;
  for (let i = 1; i < runs.length; i += 2) area += runs[i]!;
  return area;
}
