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
import { formatRle, parseRleText, validateRle } from './rle.js';

export interface CsvRow {
  /** 1-based line number in the file, for error messages. */
  line: number;
  fields: Record<string, string>;
}

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

/**
 * Parses a small CSV with a header line: comma-separated, optional double quotes around a field ("" inside
 * quotes is a quote). Blank lines are skipped. The named columns must all be present.
 */
export function parseCsv(text: string, file: string, required: readonly string[]): CsvRow[] {
  const lines = text.split(/\r?\n/);
  const headerIndex = lines.findIndex((line) => line.trim() !== '');
  if (headerIndex < 0) throw new StageError(`${file}: empty file; expected a header line ${required.join(',')}`);
  const header = splitCsvLine(lines[headerIndex]!, `${file}:${headerIndex + 1}`).map((name) => name.trim().replace(/^\uFEFF/, ''));
  for (const name of required) {
    if (!header.includes(name)) {
      throw new StageError(`${file}:${headerIndex + 1}: the header has no column "${name}" (found: ${header.join(', ')})`);
    }
  }
  const rows: CsvRow[] = [];
  for (let i = headerIndex + 1; i < lines.length; i++) {
    const text = lines[i]!;
    if (text.trim() === '') continue;
    const where = `${file}:${i + 1}`;
    const values = splitCsvLine(text, where);
    if (values.length !== header.length) {
      throw new StageError(`${where}: ${values.length} fields, the header has ${header.length}`);
    }
    const fields: Record<string, string> = {};
    header.forEach((name, k) => (fields[name] = values[k]!.trim()));
    rows.push({ line: i + 1, fields });
  }
  return rows;
}

function splitCsvLine(line: string, where: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field.trim() === '') {
      quoted = true;
      field = '';
    } else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  if (quoted) throw new StageError(`${where}: unterminated quoted field`);
  fields.push(field);
  return fields;
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
