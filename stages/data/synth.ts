// `dsb2018 synth`: a synthetic dataset in the DSB2018 layout, for tests and the pipeline's quick profile.
//
//   <out>/<id>/images/<id>.png   RGBA, like the real images
//   <out>/<id>/masks/<k>.png     one binary (0/255) PNG per nucleus, exact
//   <out>/classes.csv            filename,foreground,background (the real file's format: CRLF, no final newline)
//   <out>/report.json            counts (or --report FILE)
//
// Image i depends only on (seed, i), never on --n, so a bigger set extends a smaller one.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import sharp from 'sharp';
import { StageError } from '../stage-error.js';
import { writeAtomically } from '../write-atomically.js';
import { enumFlag, numberFlag, optionalStringFlag, stringFlag, type FlagValues, type StageProgram } from '../program.js';
import { reportFlag, writeStageReport } from '../imaging/stage-report.js';
import { cleanLabels, placeNuclei, rasteriseNuclei, uniform, type Random, type Range } from './synth-nuclei.js';
import { modalities, modalityColours, renderImage, type Modality } from './synth-render.js';

export interface SynthKnobs {
  /** 'real': sizes drawn from the real set's sizes for the modality; else width and height each in range. */
  size: 'real' | Range;
  /** Nuclei per image; 'auto' derives the count from `coverage` and the image's radius. */
  nuclei: 'auto' | Range;
  coverage: Range;
  radius: Range;
  contrast: Range;
  irregularity: number;
  maxElongation: number;
  placement: 'separated' | 'touching';
  noise: number;
  blur: number;
  illumination: number;
  modalities: Modality[];
}

/** `real` resembles the stage-1 training set; `easy` is the quick profile's small, clean, learnable set. */
export const presets: Record<'real' | 'easy', SynthKnobs> = {
  real: {
    size: 'real',
    nuclei: 'auto',
    coverage: { min: 0.02, max: 0.35 },
    radius: { min: 4, max: 30 },
    contrast: { min: 0.25, max: 0.9 },
    irregularity: 0.15,
    maxElongation: 1.8,
    placement: 'touching',
    noise: 0.02,
    blur: 1.5,
    illumination: 0.3,
    modalities: [...modalities],
  },
  easy: {
    size: { min: 128, max: 256 },
    nuclei: { min: 5, max: 25 },
    coverage: { min: 0.02, max: 0.35 },
    radius: { min: 6, max: 14 },
    contrast: { min: 0.6, max: 0.9 },
    irregularity: 0,
    maxElongation: 1.4,
    placement: 'separated',
    noise: 0.01,
    blur: 0.5,
    illumination: 0,
    modalities: ['whiteblack'],
  },
};

/** Real-set modality frequencies on the fixed training set (541 / 69 / 38 / 16 of 664). */
const modalityWeights: Record<Modality, number> = { whiteblack: 541, purplepurple: 69, purplewhite: 38, blackwhite: 16 };

/** Real image sizes (width x height) per modality, weighted by how often they occur in stage1_train. */
const realSizes: Record<Modality, [number, number, number][]> = {
  whiteblack: [
    [256, 256, 334], [360, 360, 91], [696, 520, 92], [640, 512, 13], [320, 256, 10], [347, 260, 5], [1272, 603, 6], [1388, 1040, 1],
  ],
  purplepurple: [[320, 256, 1]],
  purplewhite: [[320, 256, 1]],
  blackwhite: [[1024, 1024, 1]],
};

function pickWeighted<T>(random: Random, items: readonly T[], weight: (item: T) => number): T {
  const total = items.reduce((sum, item) => sum + weight(item), 0);
  let draw = random() * total;
  for (const item of items) {
    draw -= weight(item);
    if (draw < 0) return item;
  }
  return items[items.length - 1]!;
}

export interface SynthImage {
  id: string;
  modality: Modality;
  width: number;
  height: number;
  /** RGBA [height * width * 4]. */
  rgba: Uint8Array;
  /** Exact instance labels 1..count, the source of the masks. */
  labels: { data: Uint16Array; count: number };
  requestedNuclei: number;
  droppedNuclei: number;
}

/** Renders image `index` of the set for `seed`; deterministic in (seed, index, knobs). */
export function synthImage(seed: string, index: number, id: string, knobs: SynthKnobs): SynthImage {
  const random = seedrandom.alea(`${seed}/${index}`);
  const modality = pickWeighted(random, knobs.modalities, (m) => modalityWeights[m]);
  let width: number;
  let height: number;
  if (knobs.size === 'real') {
    const [w, h] = pickWeighted(random, realSizes[modality], (s) => s[2]);
    [width, height] = [w, h];
  } else {
    width = Math.round(uniform(random, knobs.size));
    height = Math.round(uniform(random, knobs.size));
  }
  // Log-uniform: small nuclei are far more common than large ones in the real set.
  const meanRadius = Math.exp(uniform(random, { min: Math.log(knobs.radius.min), max: Math.log(knobs.radius.max) }));
  const count =
    knobs.nuclei === 'auto'
      ? Math.max(1, Math.min(400, Math.round((uniform(random, knobs.coverage) * width * height) / (Math.PI * meanRadius ** 2))))
      : Math.round(uniform(random, knobs.nuclei));
  const shapes = placeNuclei(random, {
    width,
    height,
    count,
    meanRadius,
    radius: knobs.radius,
    irregularity: knobs.irregularity,
    maxElongation: knobs.maxElongation,
    placement: knobs.placement,
  });
  // Nuclei smaller than a quarter of the smallest allowed nucleus are border slivers: not worth a mask.
  const minArea = Math.max(4, Math.round((Math.PI * knobs.radius.min ** 2) / 4));
  const cleaned = cleanLabels(rasteriseNuclei(shapes, width, height), minArea);
  const rgba = renderImage(random, cleaned.labels, {
    modality,
    contrast: knobs.contrast,
    noise: knobs.noise,
    blur: knobs.blur,
    illumination: knobs.illumination,
  });
  return {
    id,
    modality,
    width,
    height,
    rgba,
    labels: { data: cleaned.labels.data, count: cleaned.labels.count },
    requestedNuclei: count,
    droppedNuclei: count - cleaned.labels.count,
  };
}

/** Writes one image in the DSB layout: images/<id>.png and masks/<k>.png (k zero-padded, 1-based). */
async function writeDsbSample(root: string, image: SynthImage): Promise<void> {
  const dir = join(root, image.id);
  await mkdir(join(dir, 'images'), { recursive: true });
  await mkdir(join(dir, 'masks'), { recursive: true });
  const { width, height } = image;
  await sharp(image.rgba, { raw: { width, height, channels: 4 } }).png().toFile(join(dir, 'images', `${image.id}.png`));
  const digits = Math.max(3, String(image.labels.count).length);
  const mask = new Uint8Array(width * height);
  for (let k = 1; k <= image.labels.count; k++) {
    for (let p = 0; p < mask.length; p++) mask[p] = image.labels.data[p] === k ? 255 : 0;
    await sharp(mask, { raw: { width, height, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(join(dir, 'masks', `${String(k).padStart(digits, '0')}.png`));
  }
}

/** classes.csv exactly as the real file writes it: header, CRLF line ends, no newline after the last row. */
export function classesCsv(rows: readonly { id: string; modality: Modality }[]): string {
  const lines = ['filename,foreground,background'];
  for (const row of rows) lines.push(`${row.id}.png,${modalityColours[row.modality].join(',')}`);
  return lines.join('\r\n');
}

// ---- flags ----------------------------------------------------------------------------------------------

/** "5-25" or "7" -> a range; anything else is a StageError naming the flag. */
export function parseRange(flag: string, text: string, { integer = false, min = 0 } = {}): Range {
  const match = /^\s*([0-9.]+)\s*(?:-\s*([0-9.]+)\s*)?$/.exec(text);
  const low = match ? Number(match[1]) : NaN;
  const high = match ? Number(match[2] ?? match[1]) : NaN;
  if (!Number.isFinite(low) || !Number.isFinite(high) || low > high || low < min || (integer && (!Number.isInteger(low) || !Number.isInteger(high)))) {
    throw new StageError(`flag --${flag}: "${text}" is not a range like 5-25 (${integer ? 'integers' : 'numbers'} >= ${min}, low <= high)`);
  }
  return { min: low, max: high };
}

function fractionFlag(flags: FlagValues, name: string, fallback: number): number {
  if (optionalStringFlag(flags, name) === undefined) return fallback;
  const value = numberFlag(flags, name);
  if (value < 0 || value > 1) throw new StageError(`flag --${name}: ${value} is not between 0 and 1`);
  return value;
}

const presetNames = ['real', 'easy'] as const;

/** The preset's knobs with every flag the user gave laid over them. */
export function knobsFromFlags(flags: FlagValues): SynthKnobs {
  const presetName = enumFlag(flags, 'preset', presetNames);
  const knobs: SynthKnobs = { ...presets[presetName] };
  const text = (name: string): string | undefined => optionalStringFlag(flags, name);
  const size = text('size');
  if (size !== undefined) knobs.size = size === 'real' ? 'real' : parseRange('size', size, { integer: true, min: 16 });
  const nuclei = text('nuclei');
  if (nuclei !== undefined) knobs.nuclei = nuclei === 'auto' ? 'auto' : parseRange('nuclei', nuclei, { integer: true, min: 1 });
  const coverage = text('coverage');
  if (coverage !== undefined) knobs.coverage = parseRange('coverage', coverage);
  const radius = text('radius');
  if (radius !== undefined) knobs.radius = parseRange('radius', radius, { min: 1 });
  const contrast = text('contrast');
  if (contrast !== undefined) knobs.contrast = parseRange('contrast', contrast);
  if (knobs.contrast.max > 1) throw new StageError(`flag --contrast: "${contrast}" goes above 1`);
  const placement = text('placement');
  if (placement !== undefined) {
    if (placement !== 'separated' && placement !== 'touching') throw new StageError(`flag --placement: "${placement}" is not separated or touching`);
    knobs.placement = placement;
  }
  const names = text('modalities');
  if (names !== undefined) {
    const list = names.split(',').map((name) => name.trim());
    for (const name of list) {
      if (!(modalities as readonly string[]).includes(name)) {
        throw new StageError(`flag --modalities: "${name}" is not one of ${modalities.join(', ')}`);
      }
    }
    knobs.modalities = [...new Set(list)] as Modality[];
  }
  knobs.irregularity = fractionFlag(flags, 'irregularity', knobs.irregularity);
  knobs.noise = fractionFlag(flags, 'noise', knobs.noise);
  knobs.illumination = fractionFlag(flags, 'illumination', knobs.illumination);
  if (text('blur') !== undefined) {
    knobs.blur = numberFlag(flags, 'blur');
    if (knobs.blur < 0) throw new StageError(`flag --blur: ${knobs.blur} is negative`);
  }
  return knobs;
}

const knobDefault = '(default: from --preset)';

export const stage: StageProgram = {
  name: 'synth',
  summary:
    'Writes a synthetic dataset in the DSB2018 layout (<id>/images/<id>.png RGBA, <id>/masks/<k>.png, classes.csv) ' +
    'with exact masks; deterministic for a seed.',
  flags: {
    out: { type: 'string', description: 'output directory (DSB layout)', required: true },
    n: { type: 'int', min: 1, description: 'number of images', default: 64 },
    seed: { type: 'string', description: 'random seed: the same seed and knobs give the same files', default: '0' },
    preset: { type: 'enum', values: presetNames, description: 'real (resembles stage1_train) or easy (small, clean, separated)', default: 'real' },
    size: { type: 'string', description: `image width/height range in px, e.g. 128-256, or real ${knobDefault}` },
    nuclei: { type: 'string', description: `nuclei per image, e.g. 5-25, or auto (from --coverage) ${knobDefault}` },
    coverage: { type: 'string', description: `fraction of the image covered by nuclei when --nuclei auto ${knobDefault}` },
    radius: { type: 'string', description: `nucleus radius range in px, e.g. 4-40 ${knobDefault}` },
    contrast: { type: 'string', description: `nucleus/background contrast range in 0..1 ${knobDefault}` },
    placement: { type: 'string', description: `separated (2 px gaps, inside the image) or touching ${knobDefault}` },
    irregularity: { type: 'string', description: `outline irregularity 0..1; 0 = ellipses ${knobDefault}` },
    noise: { type: 'string', description: `Gaussian noise sigma as a fraction of 255 ${knobDefault}` },
    blur: { type: 'string', description: `largest blur sigma in px ${knobDefault}` },
    illumination: { type: 'string', description: `uneven illumination amplitude 0..1 ${knobDefault}` },
    modalities: { type: 'string', description: `comma list of ${modalities.join(', ')} ${knobDefault}` },
    report: reportFlag,
  },
  async run(flags, { events }) {
    const out = stringFlag(flags, 'out');
    const n = numberFlag(flags, 'n');
    const seed = stringFlag(flags, 'seed');
    const knobs = knobsFromFlags(flags);
    const digits = Math.max(4, String(n - 1).length);
    await writeAtomically(out, async (tmp) => {
      await mkdir(tmp, { recursive: true });
      const rows: { id: string; modality: Modality }[] = [];
      const perModality: Record<string, number> = {};
      let nuclei = 0;
      let requested = 0;
      let dropped = 0;
      for (let index = 0; index < n; index++) {
        const image = synthImage(seed, index, `synth_${String(index).padStart(digits, '0')}`, knobs);
        await writeDsbSample(tmp, image);
        rows.push({ id: image.id, modality: image.modality });
        perModality[image.modality] = (perModality[image.modality] ?? 0) + 1;
        nuclei += image.labels.count;
        requested += image.requestedNuclei;
        dropped += image.droppedNuclei;
        events.progress(index + 1, n, 'image');
      }
      await writeFile(join(tmp, 'classes.csv'), classesCsv(rows));
      const report = {
        images: n,
        nuclei,
        nucleiRequested: requested,
        // Requested nuclei that did not make it: no room to place them, or hidden/cut to slivers by overlap.
        nucleiNotPlacedOrDropped: dropped,
        ...Object.fromEntries(modalities.map((m) => [`images_${m}`, perModality[m] ?? 0])),
        seed,
        knobs,
      };
      await writeStageReport(optionalStringFlag(flags, 'report'), tmp, report, events);
    });
  },
};
