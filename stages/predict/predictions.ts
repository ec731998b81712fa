// The predictions format: what predict writes, postprocess rewrites and evaluate reads.
//
//   <dir>/manifest.json   {"format": "dsb2018-predictions/1", "images": [{id, width, height, instances}, …]} (sorted by id)
//   <dir>/<id>.json       {id, width, height, instances: [{score, box: [y1, x1, y2, x2], rle: [start, length, …]}]}
//
// `rle` is Kaggle's encoding of the instance's binary mask over the whole image (column-major, 1-based
// (start, length) pairs: see stages/evaluate/rle.ts), so a row of a submission is one instance's rle joined by
// spaces. `box` is the detector's box in image pixels, ends exclusive. Instances may overlap before
// post-processing; after it they do not.
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { StageError } from '../stage-error.js';
import { validateRle } from '../evaluate/rle.js';
import { cropBox, cropFromRle, cropToRle, type CropMask } from '../evaluate/crop-mask.js';

export const predictionsFormat = 'dsb2018-predictions/1';

export type Box = [number, number, number, number];

export interface PredictedInstance {
  /** The detector's confidence, in [0, 1] for our model (any finite number is accepted). */
  score: number;
  /** [y1, x1, y2, x2] in image pixels, ends exclusive. */
  box: Box;
  /** Kaggle RLE of the mask over the whole width x height image. */
  rle: number[];
}

export interface ImagePredictions {
  id: string;
  width: number;
  height: number;
  instances: PredictedInstance[];
}

/** One manifest row: the image's size and how many instances its file holds. */
export interface PredictionsEntry {
  id: string;
  width: number;
  height: number;
  instances: number;
}

export function predictionsPath(dir: string, id: string): string {
  return join(dir, `${id}.json`);
}

/** An instance from a crop mask; the box defaults to the crop's rectangle. */
export function instanceFromCrop(crop: CropMask, score: number, imageWidth: number, imageHeight: number, box?: Box): PredictedInstance {
  return { score, box: box ?? cropBox(crop), rle: cropToRle(crop, imageWidth, imageHeight) };
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}

async function readJson(file: string, what: string): Promise<unknown> {
  if (!existsSync(file)) throw new StageError(`${file}: not found (${what})`);
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new StageError(`${file}: not valid JSON (${describe(error)})`);
  }
}

const isSize = (value: unknown): value is number => Number.isInteger(value) && (value as number) > 0;

/** Reads and checks a predictions manifest; any problem is a StageError naming the file and the entry. */
export async function readPredictionsManifest(dir: string): Promise<PredictionsEntry[]> {
  const file = join(dir, 'manifest.json');
  const parsed = (await readJson(file, `is ${dir} a predictions directory written by predict or postprocess?`)) as {
    format?: unknown;
    images?: unknown;
  } | null;
  if (parsed === null || typeof parsed !== 'object' || parsed.format !== predictionsFormat || !Array.isArray(parsed.images)) {
    throw new StageError(`${file}: expected {"format": "${predictionsFormat}", "images": [...]}`);
  }
  const seen = new Set<string>();
  return parsed.images.map((value: unknown, index) => {
    const entry = value as Partial<PredictionsEntry> | null;
    const valid =
      entry !== null &&
      typeof entry === 'object' &&
      typeof entry.id === 'string' &&
      isSafeId(entry.id) &&
      isSize(entry.width) &&
      isSize(entry.height) &&
      Number.isInteger(entry.instances) &&
      (entry.instances as number) >= 0;
    if (!valid) throw new StageError(`${file}: images[${index}] is not {id, width, height, instances} with a safe id and positive sizes`);
    if (seen.has(entry.id!)) throw new StageError(`${file}: images[${index}]: id "${entry.id}" appears twice`);
    seen.add(entry.id!);
    return { id: entry.id!, width: entry.width!, height: entry.height!, instances: entry.instances! };
  });
}

/**
 * Reads one image's predictions and validates every instance (score, box, rle against the image size).
 * When the manifest entry is given, the file must agree with it.
 */
export async function readImagePredictions(dir: string, id: string, entry?: PredictionsEntry): Promise<ImagePredictions> {
  const file = predictionsPath(dir, id);
  const parsed = (await readJson(file, `listed in ${join(dir, 'manifest.json')}`)) as Partial<ImagePredictions> | null;
  if (parsed === null || typeof parsed !== 'object' || parsed.id !== id || !isSize(parsed.width) || !isSize(parsed.height) || !Array.isArray(parsed.instances)) {
    throw new StageError(`${file}: expected {id: "${id}", width, height, instances: [...]}`);
  }
  const { width, height } = parsed;
  if (entry && (entry.width !== width || entry.height !== height || entry.instances !== parsed.instances.length)) {
    throw new StageError(
      `${file}: is ${width}x${height} with ${parsed.instances.length} instances, the manifest says ${entry.width}x${entry.height} with ${entry.instances}`,
    );
  }
  const instances = parsed.instances.map((value: unknown, index) => {
    const where = `${file}: instances[${index}]`;
    const instance = value as Partial<PredictedInstance> | null;
    if (instance === null || typeof instance !== 'object') throw new StageError(`${where}: not an object`);
    if (typeof instance.score !== 'number' || !Number.isFinite(instance.score)) throw new StageError(`${where}: score must be a finite number`);
    const box = instance.box;
    if (!Array.isArray(box) || box.length !== 4 || !box.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new StageError(`${where}: box must be [y1, x1, y2, x2] numbers`);
    }
    if (!Array.isArray(instance.rle) || !instance.rle.every((v) => typeof v === 'number')) {
      throw new StageError(`${where}: rle must be an array of numbers`);
    }
    validateRle(instance.rle, width, height, where);
    return { score: instance.score, box: box as Box, rle: instance.rle };
  });
  return { id, width, height, instances };
}

/** Ids become file names: letters, digits, '.', '_', '-' only, and no leading dot. */
function isSafeId(id: string): boolean {
  return /^[A-Za-z0-9._-]+$/.test(id) && !id.startsWith('.');
}

/**
 * Writes a predictions directory. Use inside writeAtomically(outDir, tmp => …) so a failed stage leaves nothing:
 *   const writer = new PredictionsWriter(tmp); await writer.add(image); …; await writer.finish();
 */
export class PredictionsWriter {
  private readonly entries = new Map<string, PredictionsEntry>();
  private ready: Promise<unknown> | undefined;

  constructor(readonly dir: string) {}

  async add(image: ImagePredictions): Promise<void> {
    const { id, width, height, instances } = image;
    if (!isSafeId(id)) throw new StageError(`image id "${id}" is not a safe file name (letters, digits, . _ - only)`);
    if (this.entries.has(id)) throw new StageError(`image id "${id}" appears twice`);
    this.entries.set(id, { id, width, height, instances: instances.length });
    this.ready ??= mkdir(this.dir, { recursive: true });
    await this.ready;
    const record: ImagePredictions = { id, width, height, instances: instances.map(({ score, box, rle }) => ({ score, box, rle })) };
    await writeFile(predictionsPath(this.dir, id), JSON.stringify(record) + '\n');
  }

  /** Writes manifest.json (images sorted by id) and returns its entries. */
  async finish(): Promise<PredictionsEntry[]> {
    this.ready ??= mkdir(this.dir, { recursive: true });
    await this.ready;
    const images = [...this.entries.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    await writeFile(join(this.dir, 'manifest.json'), JSON.stringify({ format: predictionsFormat, images }, null, 1) + '\n');
    return images;
  }
}

/** An instance with its mask decoded into a crop: what post-processing, TTA and evaluation work on. */
export interface MaskInstance {
  score: number;
  box: Box;
  mask: CropMask;
}

/** Decodes every instance's RLE into a crop (the RLEs were validated when the file was read). */
export function decodeInstances(image: ImagePredictions, where = image.id): MaskInstance[] {
  return image.instances.map((instance, index) => ({
    score: instance.score,
    box: instance.box,
    mask: cropFromRle(instance.rle, image.width, image.height, `${where}: instances[${index}]`),
  }));
}

/** Encodes decoded instances back into the file form. */
export function encodeInstances(instances: readonly MaskInstance[], imageWidth: number, imageHeight: number): PredictedInstance[] {
  return instances.map(({ score, box, mask }) => ({ score, box, rle: cropToRle(mask, imageWidth, imageHeight) }));
}
