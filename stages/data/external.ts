// `dsb2018 external`: the external H&E tissue images with XML nucleus outlines, as a compact dataset.
//
// Per tissue image <name>.tif with annotations/<name>.xml: fill each polygon of the first <Regions> block with
// its own label (later regions overwrite earlier ones), cut image and label map into 4 quadrants
// (<name>_0 top-left, _1 top-right, _2 bottom-left, _3 bottom-right; an odd last row/column is dropped, as in
// the original), and relabel each quadrant by 8-connected components, so a nucleus cut by the quadrant edge,
// or split by a later region, becomes separate nuclei. Images without an XML are skipped with a warning.
import { readdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, basename, join } from 'node:path';
import { StageError } from '../stage-error.js';
import { writeAtomically } from '../write-atomically.js';
import { booleanFlag, enumFlag, optionalStringFlag, stringFlag, type StageProgram } from '../program.js';
import { DatasetWriter, readImage, type Image8, type LabelMap } from '../imaging/dataset.js';
import { relabel } from '../imaging/components.js';
import { reportFlag, writeEmptyDataset, writeStageReport } from '../imaging/stage-report.js';
import { parseAnnotations } from './external-annotations.js';
import { fillPolygon } from './external-polygon.js';

const imageExtensions = new Set(['.tif', '.tiff', '.png']);

/** The quadrant q (0 TL, 1 TR, 2 BL, 3 BR) of a row-major HWC array: floor(H/2) x floor(W/2). */
export function quadrantBox(width: number, height: number, q: number): { x: number; y: number; width: number; height: number } {
  const w = Math.floor(width / 2);
  const h = Math.floor(height / 2);
  return { x: (q % 2) * w, y: Math.floor(q / 2) * h, width: w, height: h };
}

function crop<T extends Uint8Array | Uint16Array>(
  data: T,
  width: number,
  channels: number,
  box: { x: number; y: number; width: number; height: number },
  make: (length: number) => T,
): T {
  const out = make(box.width * box.height * channels);
  for (let row = 0; row < box.height; row++) {
    const from = ((box.y + row) * width + box.x) * channels;
    out.set(data.subarray(from, from + box.width * channels), row * box.width * channels);
  }
  return out;
}

export interface AnnotatedImage {
  labels: LabelMap;
  /** 1 where a later region overwrote an earlier one. [height * width] */
  overwritten: Uint8Array;
  regions: number;
  /** Regions with fewer than 3 vertices or no pixel centre inside: they label nothing. */
  emptyRegions: number;
}

/** Fills the regions in order into a label map (region k -> label k + 1). */
export function labelRegions(file: string, regions: ReturnType<typeof parseAnnotations>, width: number, height: number): AnnotatedImage {
  if (regions.length > 0xffff) throw new StageError(`${file}: ${regions.length} regions do not fit a 16-bit label map`);
  const data = new Uint16Array(width * height);
  const overwritten = new Uint8Array(width * height);
  let emptyRegions = 0;
  regions.forEach((region, k) => {
    if (fillPolygon(data, width, height, region.vertices, k + 1, overwritten) === 0) emptyRegions++;
  });
  return { labels: { width, height, data, count: regions.length }, overwritten, regions: regions.length, emptyRegions };
}

/** The four quadrant samples of one annotated image, each relabelled by 8-connected components. */
export function quadrants(
  name: string,
  image: Image8,
  annotated: AnnotatedImage,
): { id: string; image: Image8; labels: LabelMap; overlapPixels: number }[] {
  return [0, 1, 2, 3].map((q) => {
    const box = quadrantBox(image.width, image.height, q);
    const pixels = crop(image.data, image.width, image.channels, box, (n) => new Uint8Array(n));
    const labels = crop(annotated.labels.data, image.width, 1, box, (n) => new Uint16Array(n));
    const overwritten = crop(annotated.overwritten, image.width, 1, box, (n) => new Uint8Array(n));
    let overlapPixels = 0;
    for (const mark of overwritten) overlapPixels += mark;
    return {
      id: `${name}_${q}`,
      image: { width: box.width, height: box.height, channels: image.channels, data: pixels },
      labels: relabel({ width: box.width, height: box.height, data: labels, count: annotated.labels.count }, 8),
      overlapPixels,
    };
  });
}

/** The image without alpha: external pieces join the training set after strip-alpha. */
function withoutAlpha(image: Image8): Image8 {
  if (image.channels !== 4) return image;
  const data = new Uint8Array(image.width * image.height * 3);
  for (let p = 0, q = 0; q < data.length; p += 4, q += 3) {
    data[q] = image.data[p]!;
    data[q + 1] = image.data[p + 1]!;
    data[q + 2] = image.data[p + 2]!;
  }
  return { ...image, channels: 3, data };
}

export const stage: StageProgram = {
  name: 'external',
  summary:
    'Turns the external H&E tissue images and their XML outlines into a compact dataset of quadrant pieces ' +
    '(<name>_0..3, source "external"), each relabelled by 8-connected components.',
  flags: {
    images: { type: 'string', description: 'folder of tissue images (<name>.tif)', required: true },
    annotations: { type: 'string', description: 'folder of outlines (<name>.xml)', required: true },
    out: { type: 'string', description: 'output compact dataset directory', required: true },
    enabled: { type: 'bool', default: true, description: 'false: write an empty dataset (an ablation without external data)' },
    'if-missing': {
      type: 'enum',
      values: ['error', 'empty'],
      default: 'error',
      description: 'error, or empty: write an empty dataset (with a warning) when --images does not exist (no external data)',
    },
    report: reportFlag,
  },
  async run(flags, { events }) {
    const imagesDir = stringFlag(flags, 'images');
    const annotationsDir = stringFlag(flags, 'annotations');
    const out = stringFlag(flags, 'out');
    const ifMissing = enumFlag(flags, 'if-missing', ['error', 'empty']);
    const enabled = booleanFlag(flags, 'enabled');
    if (!enabled || (ifMissing === 'empty' && !existsSync(imagesDir))) {
      const why = enabled ? `warning: --images ${imagesDir} does not exist: writing an empty external dataset` : 'external: disabled (--enabled false): writing an empty dataset';
      await writeEmptyDataset(out, optionalStringFlag(flags, 'report'), { images: 0, samples: 0, nuclei: 0, missing: enabled ? 1 : 0, disabled: enabled ? 0 : 1 }, events, why);
      return;
    }
    for (const [flag, dir] of [['images', imagesDir], ['annotations', annotationsDir]] as const) {
      if (!existsSync(dir)) throw new StageError(`--${flag} ${dir}: no such directory`);
    }
    const names = (await readdir(imagesDir)).filter((file) => imageExtensions.has(extname(file).toLowerCase())).sort();
    if (names.length === 0) throw new StageError(`--images ${imagesDir}: no .tif, .tiff or .png images`);

    await writeAtomically(out, async (tmp) => {
      const writer = new DatasetWriter(tmp);
      const counts = { images: names.length, skippedWithoutAnnotations: 0, samples: 0, nuclei: 0, regions: 0, emptyRegions: 0, overlapPixels: 0 };
      for (const [index, file] of names.entries()) {
        const name = basename(file, extname(file));
        const xml = join(annotationsDir, `${name}.xml`);
        if (!existsSync(xml)) {
          events.log(`warning: ${join(imagesDir, file)}: no annotations at ${xml}; skipped`);
          counts.skippedWithoutAnnotations++;
          continue;
        }
        const regions = parseAnnotations(xml, await readFile(xml, 'utf8'));
        const image = withoutAlpha(await readImage(join(imagesDir, file)));
        const annotated = labelRegions(xml, regions, image.width, image.height);
        counts.regions += annotated.regions;
        counts.emptyRegions += annotated.emptyRegions;
        for (const piece of quadrants(name, image, annotated)) {
          await writer.add({
            info: {
              id: piece.id,
              width: piece.image.width,
              height: piece.image.height,
              channels: piece.image.channels,
              nuclei: piece.labels.count,
              overlapPixels: piece.overlapPixels,
              source: 'external',
              modality: 'purplepurple',
            },
            image: piece.image,
            labels: piece.labels,
          });
          counts.samples++;
          counts.nuclei += piece.labels.count;
          counts.overlapPixels += piece.overlapPixels;
        }
        events.progress(index + 1, names.length, 'image');
      }
      if (counts.samples === 0) throw new StageError(`--annotations ${annotationsDir}: no image in ${imagesDir} has an XML outline file`);
      await writer.finish();
      await writeStageReport(optionalStringFlag(flags, 'report'), tmp, counts, events);
    });
  },
};
