// dsb2018 fix-masks: DSB layout (+ community fixes) -> compact dataset with validated instance-label maps.
//
// For each image folder of --in: the masks come from --fixes/<id>/masks when that folder exists, and ids in
// --fixes/removed_ids.txt are dropped. Every mask is binarised at > 128; empty and duplicate masks are dropped;
// a mask whose size differs from its image is an error naming the file. Masks are painted into one label map
// in sorted filename order; a pixel claimed twice stays with the first mask (counted as overlapPixels), and a
// mask left with no pixels at all is dropped (counted as hiddenMasks). Images are kept as given (RGBA).
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import sharp from 'sharp';
import { StageError } from '../stage-error.js';
import { writeAtomically } from '../write-atomically.js';
import { optionalStringFlag, stringFlag, numberFlag, type StageProgram } from '../program.js';
import { compactLabels } from '../imaging/components.js';
import { DatasetWriter, readImage, type LabelMap, type SampleInfo } from '../imaging/dataset.js';
import { readMaskCrop, type MaskCrop } from '../imaging/mask-file.js';
import { reportFlag, writeStageReport } from '../imaging/stage-report.js';
import { forEachConcurrently } from '../imaging/map-dataset.js';
import { readClasses } from '../imaging/classes-csv.js';

/** What happened to one image's masks. */
export interface MaskCounts {
  masksRead: number;
  emptyMasks: number;
  duplicateMasks: number;
  hiddenMasks: number;
  overlapPixels: number;
  nuclei: number;
}

/** How many mask files of one image are decoded ahead of the one being painted. */
const decodeWindow = 8;

/** Decodes files in order, keeping up to `window` decodes in flight (sharp runs them on its thread pool). */
async function* decodeInOrder(files: string[], window: number): AsyncGenerator<[string, MaskCrop]> {
  const pending: Promise<MaskCrop>[] = [];
  let next = 0;
  const start = (): void => {
    const decode = readMaskCrop(files[next++]!);
    decode.catch(() => {}); // awaited below; this only stops an early failure from counting as unhandled
    pending.push(decode);
  };
  while (next < files.length && pending.length < window) start();
  for (let index = 0; index < files.length; index++) {
    const mask = await pending.shift()!;
    if (next < files.length) start();
    yield [files[index]!, mask];
  }
}

/**
 * Paints the masks (in the given order) into one label map of width x height, dropping empty and duplicate
 * masks and masks hidden entirely by earlier ones. labels: [height * width] uint16, 1..nuclei.
 */
export async function paintMasks(
  maskFiles: string[],
  width: number,
  height: number,
  imageFile: string,
): Promise<{ labels: LabelMap; counts: MaskCounts }> {
  const data = new Uint16Array(width * height);
  const claimedTwice = new Uint8Array(width * height);
  const counts: MaskCounts = { masksRead: 0, emptyMasks: 0, duplicateMasks: 0, hiddenMasks: 0, overlapPixels: 0, nuclei: 0 };
  // Kept masks by "bounds+area", with their pixels inside the bounds, to find exact duplicates cheaply.
  const kept = new Map<string, Uint8Array[]>();
  let label = 0;
  for await (const [file, mask] of decodeInOrder(maskFiles, decodeWindow)) {
    counts.masksRead++;
    if (mask.width !== width || mask.height !== height) {
      throw new StageError(`${file}: mask is ${mask.width}x${mask.height} but its image ${imageFile} is ${width}x${height}`);
    }
    const { bounds, crop } = mask;
    if (!bounds) {
      counts.emptyMasks++;
      continue;
    }
    const { x0, y0, x1, y1, area } = bounds;
    const key = `${x0},${y0},${x1},${y1},${area}`;
    const sameShape = kept.get(key) ?? [];
    if (sameShape.some((other) => other.every((value, i) => value === crop[i]))) {
      counts.duplicateMasks++;
      continue;
    }
    sameShape.push(crop);
    kept.set(key, sameShape);
    label++;
    for (let y = y0, i = 0; y < y1; y++) {
      for (let p = y * width + x0, end = y * width + x1; p < end; p++, i++) {
        if (crop[i] === 0) continue;
        if (data[p] === 0) data[p] = label;
        else if (claimedTwice[p] === 0) {
          claimedTwice[p] = 1;
          counts.overlapPixels++;
        }
      }
    }
  }
  const labels = compactLabels({ width, height, data, count: label });
  counts.hiddenMasks = label - labels.count;
  counts.nuclei = labels.count;
  return { labels, counts };
}

async function listImageFolders(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    throw new StageError(`${dir}: cannot list image folders (${(error as Error).message.split('\n')[0]})`);
  }
  const folders: string[] = [];
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    // A symlinked image folder counts too (handy for subsets of a read-only data set).
    const isFolder = entry.isDirectory() || (entry.isSymbolicLink() && (await stat(join(dir, entry.name))).isDirectory());
    if (isFolder) folders.push(entry.name);
  }
  return folders.sort();
}

async function listMasks(masksDir: string): Promise<string[]> {
  if (!existsSync(masksDir)) throw new StageError(`${masksDir}: masks folder not found`);
  const names = (await readdir(masksDir)).filter((name) => name.toLowerCase().endsWith('.png')).sort();
  // Every image of stage1_train (670) and of the fixes (109) has at least one mask: an empty folder is a
  // broken copy, and would silently train the image as "no nuclei".
  if (names.length === 0) throw new StageError(`${masksDir}: no mask PNG in the masks folder (every training image has at least one nucleus; is the copy incomplete?)`);
  return names.map((name) => join(masksDir, name));
}

export const stage: StageProgram = {
  name: 'fix-masks',
  summary:
    'Apply the community mask fixes to a DSB-layout training set, validate every mask, and write a compact dataset.',
  flags: {
    in: { type: 'string', required: true, description: 'DSB-layout folder: <id>/images/<id>.png, <id>/masks/*.png' },
    fixes: { type: 'string', description: 'fixes folder: <id>/masks/*.png replacing the originals, removed_ids.txt' },
    out: { type: 'string', required: true, description: 'compact dataset directory to write' },
    source: { type: 'string', description: 'SampleInfo.source for every sample (default: the name of --in)' },
    classes: { type: 'string', description: 'classes.csv (filename,foreground,background): sets each sample\'s modality' },
    fallback: {
      type: 'string',
      description: 'DSB-layout folder read instead when --in is absent or empty (e.g. the synthetic set; its classes.csv gives the modalities)',
    },
    concurrency: { type: 'int', min: 1, default: 3, description: 'images processed at once' },
    report: reportFlag,
  },
  async run(flags, { events }) {
    let inDir = resolve(stringFlag(flags, 'in'));
    let fixesDir = optionalStringFlag(flags, 'fixes');
    let classesFile = optionalStringFlag(flags, 'classes');
    const fallback = optionalStringFlag(flags, 'fallback');
    const outDir = resolve(stringFlag(flags, 'out'));
    const concurrency = numberFlag(flags, 'concurrency');

    // The pipeline points --in at the real data and --fallback at the synthetic set: absent real data means
    // the synthetic set is used, with its own classes and without fixes.
    if (fallback !== undefined && (!existsSync(inDir) || (await listImageFolders(inDir)).length === 0)) {
      events.log(`fix-masks: ${inDir} is absent or empty: using ${fallback} instead`);
      inDir = resolve(fallback);
      fixesDir = undefined;
      classesFile = existsSync(join(inDir, 'classes.csv')) ? join(inDir, 'classes.csv') : undefined;
    }
    const source = optionalStringFlag(flags, 'source') ?? basename(inDir);
    const modalities = classesFile !== undefined ? await readClasses(classesFile) : undefined;

    const ids = await listImageFolders(inDir);
    if (ids.length === 0) throw new StageError(`${inDir}: no image folders found (expected <id>/images/<id>.png)`);
    const removed = new Set<string>();
    const fixed = new Set<string>();
    if (fixesDir !== undefined) {
      if (!existsSync(fixesDir)) throw new StageError(`${fixesDir}: fixes folder not found`);
      const removedFile = join(fixesDir, 'removed_ids.txt');
      if (existsSync(removedFile)) {
        for (const line of (await readFile(removedFile, 'utf8')).split(/\r?\n/)) if (line.trim()) removed.add(line.trim());
      }
      for (const id of await listImageFolders(fixesDir)) fixed.add(id);
    }
    const kept = ids.filter((id) => !removed.has(id));
    const totals = {
      imagesIn: ids.length,
      imagesRemoved: ids.length - kept.length,
      imagesFixed: kept.filter((id) => fixed.has(id)).length,
      imagesWritten: 0,
      removedIdsNotFound: [...removed].filter((id) => !ids.includes(id)).length,
      fixesWithoutImage: [...fixed].filter((id) => !ids.includes(id)).length,
      masksRead: 0,
      emptyMasks: 0,
      duplicateMasks: 0,
      hiddenMasks: 0,
      overlapPixels: 0,
      nuclei: 0,
    };
    if (totals.fixesWithoutImage > 0) events.log(`fix-masks: ${totals.fixesWithoutImage} fix folder(s) match no image in ${inDir}`);

    await writeAtomically(outDir, async (tmp) => {
      const writer = new DatasetWriter(tmp);
      let done = 0;
      events.progress(0, kept.length, 'image');
      await forEachConcurrently(kept, concurrency, async (id) => {
        const imageFile = join(inDir, id, 'images', `${id}.png`);
        const masksDir = fixed.has(id) ? join(fixesDir!, id, 'masks') : join(inDir, id, 'masks');
        const { width, height, channels, format, depth } = await readHeader(imageFile);
        const { labels, counts } = await paintMasks(await listMasks(masksDir), width, height, imageFile);
        const info: SampleInfo = { id, width, height, channels, nuclei: labels.count, overlapPixels: counts.overlapPixels, source };
        const modality = modalities?.get(id);
        if (modality !== undefined) info.modality = modality;
        if (format === 'png' && depth === 'uchar') await writer.addWithImageFile(info, imageFile, labels);
        else await writer.add({ info, image: await readImage(imageFile), labels });
        for (const key of ['masksRead', 'emptyMasks', 'duplicateMasks', 'hiddenMasks', 'overlapPixels', 'nuclei'] as const) {
          totals[key] += counts[key];
        }
        totals.imagesWritten++;
        events.progress(++done, kept.length, 'image');
      });
      await writer.finish();
      await writeStageReport(optionalStringFlag(flags, 'report'), tmp, totals, events);
    });
  },
};

/**
 * Decodes the image fully (so a truncated file fails here, naming it) and returns what the manifest needs.
 */
async function readHeader(
  file: string,
): Promise<{ width: number; height: number; channels: 1 | 3 | 4; format: string; depth: string }> {
  if (!existsSync(file)) throw new StageError(`${file}: image not found`);
  try {
    const pipeline = sharp(file, { failOn: 'truncated' });
    const meta = await pipeline.metadata();
    // A full decode to a 1x1 statistic would still read every pixel: stats() does, cheaply, without a copy out.
    await pipeline.stats();
    const channels = meta.channels === 2 ? 4 : meta.channels;
    if (channels !== 1 && channels !== 3 && channels !== 4) throw new Error(`unsupported channel count ${meta.channels}`);
    return { width: meta.width!, height: meta.height!, channels, format: meta.format ?? '', depth: meta.depth ?? '' };
  } catch (error) {
    throw new StageError(`${file}: cannot decode image (${(error as Error).message.split('\n')[0]})`);
  }
}
