// The compact dataset: how DSB2018 samples move between stages after fix-masks.
//
//   <dir>/manifest.json      {"format": "dsb2018-compact/1", "samples": [SampleInfo, …]}  (sorted by id)
//   <dir>/images/<id>.png    8-bit image, RGB (or RGBA/grey before strip-alpha), as sharp writes it
//   <dir>/labels/<id>.png    16-bit single-channel instance-label map: 0 = background, 1..n = nuclei
//
// Two files per sample instead of one per nucleus, so hashing and restoring the whole training set takes
// about a second. Pixel I/O goes through sharp (libvips): it decodes and encodes 8- and 16-bit PNG natively.
import { readFile, writeFile, mkdir, copyFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { StageError } from '../stage-error.js';

// Every file is read once: libvips' operation cache would only hold memory.
sharp.cache(false);

export const compactFormat = 'dsb2018-compact/1';

/** An 8-bit image, HWC interleaved: data.length === width * height * channels. */
export interface Image8 {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  data: Uint8Array;
}

/** An instance-label map, row-major: data.length === width * height; 0 = background, 1..count = nuclei. */
export interface LabelMap {
  width: number;
  height: number;
  data: Uint16Array;
  count: number;
}

export interface SampleInfo {
  id: string;
  width: number;
  height: number;
  channels: number;
  nuclei: number;
  /** Pixels claimed by more than one original mask (given to the first mask in sorted filename order). */
  overlapPixels: number;
  /** Where the sample came from: "stage1_train", "external", "mosaic", "synth", … */
  source: string;
  /** Optional imaging-modality class (e.g. "whiteblack"), used by `split` when no --classes file is given. */
  modality?: string;
}

export interface Sample {
  info: SampleInfo;
  image: Image8;
  labels: LabelMap;
}

export function imagePath(dir: string, id: string): string {
  return join(dir, 'images', `${id}.png`);
}

export function labelsPath(dir: string, id: string): string {
  return join(dir, 'labels', `${id}.png`);
}

function describe(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}

/** Reads a compact dataset's manifest; a missing or malformed manifest is a StageError naming the file. */
export async function readManifest(dir: string): Promise<SampleInfo[]> {
  const file = join(dir, 'manifest.json');
  if (!existsSync(file)) {
    throw new StageError(`${file}: not found (is ${dir} a compact dataset written by fix-masks or synth?)`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new StageError(`${file}: not valid JSON (${describe(error)})`);
  }
  const manifest = parsed as { format?: unknown; samples?: unknown };
  if (manifest.format !== compactFormat || !Array.isArray(manifest.samples)) {
    throw new StageError(`${file}: expected {"format": "${compactFormat}", "samples": [...]}`);
  }
  manifest.samples.forEach((sample: unknown, index) => {
    const info = sample as Partial<SampleInfo> | null;
    const valid =
      info !== null &&
      typeof info === 'object' &&
      typeof info.id === 'string' &&
      info.id !== '' &&
      Number.isInteger(info.width) &&
      Number.isInteger(info.height) &&
      Number.isInteger(info.channels) &&
      Number.isInteger(info.nuclei) &&
      Number.isInteger(info.overlapPixels) &&
      typeof info.source === 'string' &&
      (info.modality === undefined || typeof info.modality === 'string');
    if (!valid) throw new StageError(`${file}: samples[${index}] is not a valid sample record`);
  });
  return manifest.samples as SampleInfo[];
}

/**
 * Decodes an 8-bit image with sharp, keeping its channels: grey stays 1 channel, RGB 3, RGBA 4 (grey + alpha
 * becomes RGBA). A truncated or corrupt file is a StageError naming the file.
 */
export async function readImage(file: string): Promise<Image8> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    const pipeline = sharp(file, { failOn: 'truncated' });
    // sharp converts to sRGB on output unless told otherwise: keep single-channel images single-channel.
    const { channels } = await pipeline.metadata();
    if (channels === 1) pipeline.toColourspace('b-w');
    decoded = await pipeline.raw().toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new StageError(`${file}: cannot decode image (${describe(error)})`);
  }
  const { data, info } = decoded;
  const channels = info.channels as number;
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw new StageError(`${file}: unsupported channel count ${channels}`);
  }
  return { width: info.width, height: info.height, channels, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Encodes an 8-bit image as PNG. */
export async function writeImage(file: string, image: Image8): Promise<void> {
  const { width, height, channels, data } = image;
  if (data.length !== width * height * channels) {
    throw new Error(`writeImage ${file}: data has ${data.length} bytes, expected ${width}x${height}x${channels}`);
  }
  const pipeline = sharp(data, { raw: { width, height, channels } });
  if (channels === 1) pipeline.toColourspace('b-w');
  await pipeline.png({ compressionLevel: 3 }).toFile(file);
}

/** Decodes a 16-bit single-channel label map; corrupt, multi-channel or 8-bit files name the file. */
export async function readLabels(file: string): Promise<LabelMap> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    const pipeline = sharp(file, { failOn: 'truncated' });
    const { channels, depth } = await pipeline.metadata();
    // Checked up front: sharp would otherwise convert colour to grey, or scale 8-bit values by 257, silently.
    if (channels !== 1 || depth !== 'ushort') {
      throw new StageError(
        `${file}: a label map is a 16-bit single-channel PNG, this file has ${channels} channel(s) of ${depth}`,
      );
    }
    decoded = await pipeline.toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  } catch (error) {
    if (error instanceof StageError) throw error;
    throw new StageError(`${file}: cannot decode label map (${describe(error)})`);
  }
  const { width, height } = decoded.info;
  // sharp hands back native-endian 16-bit samples; copy into an aligned array.
  const data = new Uint16Array(width * height);
  new Uint8Array(data.buffer).set(decoded.data.subarray(0, width * height * 2));
  let count = 0;
  for (let i = 0; i < data.length; i++) if (data[i]! > count) count = data[i]!;
  return { width, height, data, count };
}

/** Encodes a label map as a 16-bit grey PNG. */
export async function writeLabels(file: string, labels: LabelMap): Promise<void> {
  const { width, height, data } = labels;
  if (data.length !== width * height) {
    throw new Error(`writeLabels ${file}: data has ${data.length} pixels, expected ${width}x${height}`);
  }
  // A Uint16Array input tells sharp the raw samples are 16-bit.
  await sharp(data, { raw: { width, height, channels: 1 } })
    .toColourspace('grey16')
    .png({ compressionLevel: 3 })
    .toFile(file);
}

/** Reads one sample of a compact dataset and checks that image, labels and manifest agree on its size. */
export async function readSample(dir: string, id: string, info?: SampleInfo): Promise<Sample> {
  const record = info ?? (await readManifest(dir)).find((sample) => sample.id === id);
  if (!record) throw new StageError(`${join(dir, 'manifest.json')}: no sample with id "${id}"`);
  const [image, labels] = await Promise.all([readImage(imagePath(dir, id)), readLabels(labelsPath(dir, id))]);
  checkSize(imagePath(dir, id), image, record);
  checkSize(labelsPath(dir, id), labels, record);
  return { info: record, image, labels };
}

/** A decoded file must have the size its manifest entry gives. */
export function checkSize(file: string, actual: { width: number; height: number }, expected: { width: number; height: number }): void {
  if (actual.width !== expected.width || actual.height !== expected.height) {
    throw new StageError(
      `${file}: is ${actual.width}x${actual.height}, the manifest says ${expected.width}x${expected.height}`,
    );
  }
}

/**
 * Writes a compact dataset. Use inside writeAtomically(outDir, tmp => …) so a failed stage leaves nothing:
 *   const writer = new DatasetWriter(tmp); await writer.add(sample); …; await writer.finish();
 */
export class DatasetWriter {
  private readonly samples = new Map<string, SampleInfo>();
  private ready: Promise<void> | undefined;

  constructor(readonly dir: string) {}

  private prepare(): Promise<void> {
    this.ready ??= (async () => {
      await mkdir(join(this.dir, 'images'), { recursive: true });
      await mkdir(join(this.dir, 'labels'), { recursive: true });
    })();
    return this.ready;
  }

  private record(info: SampleInfo): void {
    if (this.samples.has(info.id)) throw new StageError(`sample id "${info.id}" appears twice`);
    if (!/^[A-Za-z0-9._-]+$/.test(info.id) || info.id.startsWith('.')) {
      throw new StageError(`sample id "${info.id}" is not a safe file name (letters, digits, . _ - only)`);
    }
    this.samples.set(info.id, info);
  }

  /** Writes images/<id>.png and labels/<id>.png and records the sample's info. */
  async add(sample: Sample): Promise<void> {
    const { info, image, labels } = sample;
    if (image.width !== labels.width || image.height !== labels.height) {
      throw new Error(`sample ${info.id}: image ${image.width}x${image.height} but labels ${labels.width}x${labels.height}`);
    }
    this.record({ ...info, width: image.width, height: image.height, channels: image.channels, nuclei: labels.count });
    await this.prepare();
    await Promise.all([writeImage(imagePath(this.dir, info.id), image), writeLabels(labelsPath(this.dir, info.id), labels)]);
  }

  /**
   * Records a sample whose image and/or labels are unchanged from another compact dataset: those files are
   * copied byte for byte (no decode/encode), the rest written. Used by stages that change only one half.
   */
  async addCopy(
    from: string,
    info: SampleInfo,
    changed: { image?: Image8; labels?: LabelMap } = {},
  ): Promise<void> {
    const width = changed.image?.width ?? changed.labels?.width ?? info.width;
    const height = changed.image?.height ?? changed.labels?.height ?? info.height;
    this.record({
      ...info,
      width,
      height,
      channels: changed.image?.channels ?? info.channels,
      nuclei: changed.labels?.count ?? info.nuclei,
    });
    await this.prepare();
    await Promise.all([
      changed.image
        ? writeImage(imagePath(this.dir, info.id), changed.image)
        : copyFile(imagePath(from, info.id), imagePath(this.dir, info.id)),
      changed.labels
        ? writeLabels(labelsPath(this.dir, info.id), changed.labels)
        : copyFile(labelsPath(from, info.id), labelsPath(this.dir, info.id)),
    ]);
  }

  /**
   * Records a sample whose image PNG already exists in a form sharp reads as `info.channels` 8-bit channels:
   * the file is copied byte for byte (no decode/encode) and the labels written.
   */
  async addWithImageFile(info: SampleInfo, imageFile: string, labels: LabelMap): Promise<void> {
    this.record({ ...info, width: labels.width, height: labels.height, nuclei: labels.count });
    await this.prepare();
    await Promise.all([
      copyFile(imageFile, imagePath(this.dir, info.id)),
      writeLabels(labelsPath(this.dir, info.id), labels),
    ]);
  }

  /** Writes manifest.json (samples sorted by id) and returns the sorted records. */
  async finish(): Promise<SampleInfo[]> {
    await this.prepare();
    const samples = [...this.samples.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    await writeFile(join(this.dir, 'manifest.json'), JSON.stringify({ format: compactFormat, samples }, null, 1) + '\n');
    return samples;
  }
}

/** Reads an id list (train.txt / val.txt): one id per line, blank lines ignored. */
export async function readIdList(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new StageError(`${file}: cannot read id list (${describe(error)})`);
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

/** Writes an id list, one id per line. */
export function idListText(ids: readonly string[]): string {
  return ids.map((id) => id + '\n').join('');
}
