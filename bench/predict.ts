// Predict + postprocess seconds per image on this machine's CPU (the backend ladder's pick, normally wasm), for
// the small backbone at 256 and ResNet50 at 512, against the original's 1–4 s per image on a P100 GPU.
//
// Random weights (no trained checkpoint is needed to time the arithmetic). Random weights score nearly every ROI
// ~1.0, so the detector would always return its maximum (400 for the recipe), far more than a real image holds
// and the mask head's cost grows with it: both cases are capped at 64 instances, a typical DSB2018 image's count.
// TTA hflip (two passes per image, as the recipe); the scale-down retry off (it only runs for an image left without
// masks). Images: stage-1 test images when the real data is present (bench/dsb2018-data.ts), else synthetic ones.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dsb2018Data } from './dsb2018-data.js';
import type { BenchResult } from './run.js';
import type { Image8 } from '../stages/imaging/dataset.js';
import { selectBackend } from '../stages/model/backend.js';
import { configFromParams } from '../stages/model/config.js';
import { MaskRcnn } from '../stages/model/mask-rcnn.js';
import { seededRng } from '../stages/model/sampler.js';
import { defaultCleanOptions } from '../stages/postprocess/clean-masks.js';
import { postprocessDirectory } from '../stages/postprocess/postprocess.js';
import { defaultPredictOptions, predictImages, type PredictOptions } from '../stages/predict/predict-core.js';
import { readInputImage, type PredictInput } from '../stages/predict/predict-inputs.js';
import { PredictionsWriter, encodeInstances } from '../stages/predict/predictions.js';

const testImages = join(dsb2018Data, 'stage1_test');

interface BenchCase {
  label: string;
  params: Record<string, unknown>;
  /** Images timed. */
  images: number;
  /** One untimed pass first (kernel set-up). Off for ResNet50, where a pass takes a minute and set-up ~1 s. */
  warmUp: boolean;
}

const cases: BenchCase[] = [
  { label: 'small backbone at 256', params: { preset: 'small', detection: { maxInstances: 64 } }, images: 4, warmUp: true },
  { label: 'ResNet50 at 512', params: { preset: 'recipe', backbone: { name: 'resnet50' }, detection: { maxInstances: 64 } }, images: 1, warmUp: false },
];

const options: PredictOptions = { ...defaultPredictOptions, tta: 'hflip', scaleDownRetry: false };

/** Stage-1 test images (sorted ids, so the same ones each run), else synthetic 320x256 fluorescence-like tiles. */
async function benchImages(count: number): Promise<Array<{ id: string; image: Image8 }>> {
  if (existsSync(testImages)) {
    const ids = readdirSync(testImages).filter((id) => existsSync(join(testImages, id, 'images', `${id}.png`))).sort().slice(0, count);
    const inputs: PredictInput[] = ids.map((id) => ({ id, file: join(testImages, id, 'images', `${id}.png`) }));
    return Promise.all(inputs.map(async (input) => ({ id: input.id, image: await readInputImage(input) })));
  }
  const random = seededRng('predict-bench');
  return Array.from({ length: count }, (_, k) => {
    const width = 320;
    const height = 256;
    const data = new Uint8Array(width * height * 3).fill(12);
    for (let n = 0; n < 30; n++) {
      const r = 5 + random() * 8;
      const cx = random() * width;
      const cy = random() * height;
      for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(height, cy + r); y++) {
        for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(width, cx + r); x++) {
          if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) data.fill(200, (y * width + x) * 3, (y * width + x) * 3 + 3);
        }
      }
    }
    return { id: `synthetic${k}`, image: { width, height, channels: 3, data } };
  });
}

export async function run(): Promise<BenchResult[]> {
  const backend = await selectBackend('auto', (message) => process.stderr.write(`  ${message}\n`), { threads: 'auto' });
  const source = existsSync(testImages) ? 'stage1_test' : 'synthetic 320x256';
  const results: BenchResult[] = [];
  for (const c of cases) {
    const model = new MaskRcnn(configFromParams(c.params));
    const dir = mkdtempSync(join(tmpdir(), 'bench-predict-'));
    try {
      model.build();
      const images = await benchImages(c.images + (c.warmUp ? 1 : 0));
      const timed = c.warmUp ? images.slice(1) : images;
      if (c.warmUp) await model.detectImages([images[0]!.image]);
      // The predict stage's loop (without reading the files): detect with TTA, merge, encode, write.
      const writer = new PredictionsWriter(join(dir, 'raw'));
      let instances = 0;
      const started = performance.now();
      for (const { id, image } of timed) {
        const [outcome] = await predictImages([image], (images) => model.detectImages(images), options);
        instances += outcome!.instances.length;
        await writer.add({ id, width: image.width, height: image.height, instances: encodeInstances(outcome!.instances, image.width, image.height) });
      }
      await writer.finish();
      const predictSeconds = (performance.now() - started) / 1000 / timed.length;
      const postStarted = performance.now();
      const cleaned = await postprocessDirectory(join(dir, 'raw'), join(dir, 'clean'), defaultCleanOptions);
      const postSeconds = (performance.now() - postStarted) / 1000 / timed.length;
      const sizes = timed.map(({ image }) => `${image.width}x${image.height}`).join(', ');
      const note = `${backend.name}${backend.threads ? ` (${backend.threads} threads)` : ''}, random weights, ${timed.length} ${source} image${timed.length === 1 ? '' : 's'} (${sizes}), ` +
        `${(instances / timed.length).toFixed(0)} instances/image before and ${(cleaned.output / timed.length).toFixed(0)} after postprocess${c.warmUp ? '' : ', no warm-up pass'}`;
      results.push(
        { name: `predict, ${c.label}, TTA hflip (2 passes)`, value: predictSeconds, unit: 's/image', command: 'predictImages(tta hflip) + encode + write', note },
        { name: `postprocess, ${c.label}`, value: postSeconds, unit: 's/image', command: 'postprocessDirectory(defaults)', note: 'same images' },
        {
          name: `predict + postprocess, ${c.label}`,
          value: predictSeconds + postSeconds,
          unit: 's/image',
          target: 'the original: 1–4 s/image on a P100 GPU',
          note: 'CPU vs GPU: for scale, not a goal on this machine',
        },
      );
    } finally {
      model.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return results;
}
