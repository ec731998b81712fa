// Post-processing seconds per image at realistic instance counts (DSB2018 images hold from a handful to ~400
// nuclei; the detector keeps at most 400). Predictions are synthetic: overlapping elliptical nuclei with
// holes and ragged edges, scores random, like a raw Mask R-CNN output before clean-up.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import type { BenchResult } from './run.js';
import { cropFromFullMask, type CropMask } from '../stages/evaluate/crop-mask.js';
import { cleanMasks, defaultCleanOptions } from '../stages/postprocess/clean-masks.js';
import { postprocessDirectory } from '../stages/postprocess/postprocess.js';
import { PredictionsWriter, decodeInstances, encodeInstances, instanceFromCrop, type ImagePredictions } from '../stages/predict/predictions.js';

/** A raw-looking prediction: `count` ellipses (radius 4-14 px) with 5% pixel dropout, overlapping freely. */
function syntheticImage(id: string, width: number, height: number, count: number, random: () => number): ImagePredictions {
  const instances = [];
  for (let k = 0; k < count; k++) {
    const rx = 4 + random() * 10;
    const ry = 4 + random() * 10;
    const cx = random() * width;
    const cy = random() * height;
    const mask = new Uint8Array(width * height);
    for (let y = Math.max(0, Math.floor(cy - ry)); y < Math.min(height, Math.ceil(cy + ry)); y++) {
      for (let x = Math.max(0, Math.floor(cx - rx)); x < Math.min(width, Math.ceil(cx + rx)); x++) {
        const d = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2;
        if (d <= 1 && random() > 0.05) mask[y * width + x] = 1;
      }
    }
    const crop: CropMask = cropFromFullMask(mask, width, height);
    if (crop.width > 0) instances.push(instanceFromCrop(crop, 0.75 + 0.25 * random(), width, height));
  }
  return { id, width, height, instances };
}

const cases: Array<{ label: string; width: number; height: number; count: number; images: number }> = [
  { label: '256x256, 30 instances (a typical fluorescence tile)', width: 256, height: 256, count: 30, images: 20 },
  { label: '696x520, 120 instances', width: 696, height: 520, count: 120, images: 6 },
  { label: '1000x1000, 400 instances (the detector maximum)', width: 1000, height: 1000, count: 400, images: 3 },
];

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const random = seedrandom('postprocess-bench');
  // Warm-up, so the first case does not pay for the JIT.
  const warm = syntheticImage('warm', 256, 256, 30, random);
  for (let i = 0; i < 5; i++) cleanMasks(decodeInstances(warm), 256, 256, defaultCleanOptions);
  for (const c of cases) {
    const images = Array.from({ length: c.images }, (_, i) => syntheticImage(`img${i}`, c.width, c.height, c.count, random));
    // In memory: decode RLE -> clean -> encode RLE, the stage's work without file I/O. Best of 3 passes: the
    // machine is shared, and the best pass is the one least disturbed by other work.
    let inMemory = Infinity;
    for (let pass = 0; pass < 3; pass++) {
      const started = performance.now();
      for (const image of images) {
        const { instances } = cleanMasks(decodeInstances(image), image.width, image.height, defaultCleanOptions);
        encodeInstances(instances, image.width, image.height);
      }
      inMemory = Math.min(inMemory, (performance.now() - started) / 1000 / images.length);
    }
    results.push({ name: `clean-up of one ${c.label}`, value: inMemory * 1000, unit: 'ms/image', command: 'decodeInstances -> cleanMasks -> encodeInstances', note: 'best of 3 passes' });
    // Through the stage's directory code: JSON read/validate, clean, JSON write, atomic rename.
    const dir = mkdtempSync(join(tmpdir(), 'bench-postprocess-'));
    try {
      const writer = new PredictionsWriter(join(dir, 'in'));
      for (const image of images) await writer.add(image);
      await writer.finish();
      let perImage = Infinity;
      for (let pass = 0; pass < 3; pass++) {
        const t0 = performance.now();
        await postprocessDirectory(join(dir, 'in'), join(dir, 'out'), defaultCleanOptions);
        perImage = Math.min(perImage, (performance.now() - t0) / 1000 / images.length);
      }
      results.push({
        name: `postprocess stage per image, ${c.label}, with file I/O`,
        value: perImage * 1000,
        unit: 'ms/image',
        command: 'postprocessDirectory(in, out, defaults)',
        note: `${images.length} images, best of 3 passes`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return results;
}
