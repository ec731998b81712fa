// The competition's CSV files.
//
//   submission  ImageId,EncodedPixels                          one row per predicted nucleus; an image with no
//                                                              nucleus has one row with empty EncodedPixels
//   solution    ImageId,EncodedPixels,Height,Width,Usage       one row per true nucleus, as Kaggle released it
//                                                              (Usage: Public / Private; "Ignored" rows are skipped)
//
// EncodedPixels is the Kaggle RLE of rle.ts. Every problem is a StageError naming file:line.
import { readFile } from 'node:fs/promises';
import { StageError } from '../stage-error.js';
import { parseCsv } from '../imaging/csv-table.js';
import { formatRle, parseRleText, validateRle } from './rle.js';

/** One image's masks from a submission or solution, in file order. */
export interface CsvImage {
  id: string;
  width: number;
  height: number;
  /** Where each mask came from ("file:line"), parallel to `rles`. */
  rows: string[];
  rles: number[][];
  usage?: string;
}

function positiveInteger(text: string | undefined, where: string, column: string): number {
  const value = Number(text);
  if (!text || !/^\d+$/.test(text) || value < 1) throw new StageError(`${where}: ${column} "${text ?? ''}" is not a positive whole number`);
  return value;
}

/** Reads a solution file: image sizes from its Height/Width columns; every RLE checked against them. */
export async function readSolution(file: string): Promise<Map<string, CsvImage>> {
  const rows = parseCsv(await readText(file), file, ['ImageId', 'EncodedPixels', 'Height', 'Width']);
  const images = new Map<string, CsvImage>();
  for (const { line, fields } of rows) {
    const where = `${file}:${line}`;
    const usage = fields['Usage'];
    if (usage === 'Ignored') continue;
    const id = fields['ImageId']!;
    if (id === '') throw new StageError(`${where}: empty ImageId`);
    const height = positiveInteger(fields['Height'], where, 'Height');
    const width = positiveInteger(fields['Width'], where, 'Width');
    let image = images.get(id);
    if (!image) {
      image = { id, width, height, rows: [], rles: [], ...(usage ? { usage } : {}) };
      images.set(id, image);
    } else if (image.width !== width || image.height !== height) {
      throw new StageError(`${where}: image ${id} is ${width}x${height} here but ${image.width}x${image.height} on an earlier row`);
    }
    const runs = parseRleText(fields['EncodedPixels']!, where);
    validateRle(runs, width, height, where);
    if (runs.length > 0) {
      image.rows.push(where);
      image.rles.push(runs);
    }
  }
  return images;
}

/**
 * Reads a submission against the image sizes it will be scored with; an image the sizes do not know, or an
 * image of the sizes the submission lacks, is an error (Kaggle refused such submissions too).
 */
export async function readSubmission(file: string, sizes: ReadonlyMap<string, { width: number; height: number }>): Promise<Map<string, CsvImage>> {
  const rows = parseCsv(await readText(file), file, ['ImageId', 'EncodedPixels']);
  const images = new Map<string, CsvImage>();
  for (const { line, fields } of rows) {
    const where = `${file}:${line}`;
    const id = fields['ImageId']!;
    const size = sizes.get(id);
    if (!size) throw new StageError(`${where}: image "${id}" is not in the solution`);
    let image = images.get(id);
    if (!image) {
      image = { id, width: size.width, height: size.height, rows: [], rles: [] };
      images.set(id, image);
    }
    const runs = parseRleText(fields['EncodedPixels']!, where);
    validateRle(runs, size.width, size.height, where);
    if (runs.length > 0) {
      image.rows.push(where);
      image.rles.push(runs);
    }
  }
  for (const id of sizes.keys()) {
    if (!images.has(id)) {
      throw new StageError(`${file}: no row for image "${id}" (an image with no nucleus needs one row with empty EncodedPixels)`);
    }
  }
  return images;
}

/**
 * A submission's text: rows in the order given; an image with no masks gets one row with empty
 * EncodedPixels.
 */
export function submissionCsv(images: Iterable<{ id: string; rles: readonly (readonly number[])[] }>): string {
  const lines = ['ImageId,EncodedPixels'];
  for (const { id, rles } of images) {
    if (rles.length === 0) lines.push(`${id},`);
    for (const runs of rles) lines.push(`${id},${formatRle(runs)}`);
  }
  return lines.join('\n') + '\n';
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new StageError(`${file}: cannot read (${code === 'ENOENT' ? 'no such file' : (error as Error).message})`);
  }
}
