// The predict stage's core, free of files and of the model: images in, instances out, given any detector.
//
//   pass 1:  detect(images [+ their mirror images])  -> instances per image (TTA: the recipe's union merge)
//   check:   would the image end with no mask once post-processed? (the recipe's `masks.sum() < 2`)
//   pass 2:  for those images only, detect on the image pasted top-left into a 4H x 4W black canvas (same TTA),
//            and crop the instances back to the image
//   zoom:    (off by default) images whose first-pass nuclei are too small for the network are predicted again
//            at twice the scale, as four tiles or through a 2S network (small-nuclei.ts), which replaces pass 1
//
// The detector is a plain function, so tests drive this with a stub and the stage with MaskRcnn.detectImages.
import type { Image8 } from '../imaging/dataset.js';
import type { Detection } from '../model/mask-rcnn.js';
import { cropArea, subCrop, tightenCrop, type CropMask } from '../evaluate/crop-mask.js';
import { cleanMasks, defaultCleanOptions, type CleanOptions } from '../postprocess/clean-masks.js';
import type { Box, MaskInstance } from './predictions.js';
import { cropBackInstances, defaultScaleDownOptions, needsScaleDownRetry, pasteTopLeft, type ScaleDownOptions } from './scale-down.js';
import { cropImage, defaultSmallNucleiOptions, mergeTiles, needsZoom, quarterTiles, tileOverlap, type SmallNucleiOptions } from './small-nuclei.js';
import { defaultFlipMergeOptions, flipInstancesBack, mergeFlipUnion, type FlipMergeOptions } from './tta.js';

/** Images as they are read -> one Detection per image, at each image's own size (MaskRcnn.detectImages fits). */
export type DetectFn = (images: Image8[]) => Detection[] | Promise<Detection[]>;

export const ttaModes = ['none', 'hflip'] as const;
export type TtaMode = (typeof ttaModes)[number];

export interface PredictOptions {
  tta: TtaMode;
  flipMerge: FlipMergeOptions;
  /** Whether an image left without masks is predicted again on a larger canvas. */
  scaleDownRetry: boolean;
  scaleDown: ScaleDownOptions;
  /** The post-processing the retry check assumes (the postprocess stage's defaults). */
  retryCheck: CleanOptions;
  /** A second look, at twice the scale, at images whose nuclei are too small for the network. */
  smallNuclei: SmallNucleiOptions;
}

export const defaultPredictOptions: PredictOptions = {
  tta: 'hflip',
  flipMerge: defaultFlipMergeOptions,
  scaleDownRetry: true,
  scaleDown: defaultScaleDownOptions,
  retryCheck: defaultCleanOptions,
  smallNuclei: defaultSmallNucleiOptions,
};

/** The detectors predictImages may call: at the network's input size S, and (for the upscale zoom) at 2S. */
export interface Detectors {
  detect: DetectFn;
  /** The input size S the first detector molds images to. */
  networkSize: number;
  /** The same weights at 2S; required when smallNuclei.mode is 'upscale'. */
  detectUpscaled?: DetectFn;
}

export interface ImageOutcome {
  instances: MaskInstance[];
  /** The scale-down retry ran for this image. */
  retried: boolean;
  /** …and its instances replaced the first pass's. */
  retryUsed: boolean;
  /** The first pass's nuclei were too small: these instances come from the zoomed pass. */
  zoomed: boolean;
}

/** Mirrors an image left-right (any channel count). */
export function flipImageHorizontally(image: Image8): Image8 {
  const { width, height, channels } = image;
  const data = new Uint8Array(image.data.length);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const from = (row + x) * channels;
      const to = (row + width - 1 - x) * channels;
      for (let c = 0; c < channels; c++) data[to + c] = image.data[from + c]!;
    }
  }
  return { width, height, channels, data };
}

/**
 * One Detection (full-size masks [H * W]) -> instances with their masks cut to their pixels. Instances whose
 * mask came out empty (the whole 28x28 mask under the threshold) are dropped: a mask with no pixels is no object.
 */
export function detectionToInstances(detection: Detection, width: number, height: number): MaskInstance[] {
  const n = detection.scores.length;
  if (detection.masks.length !== n || detection.boxes.length !== 4 * n) {
    throw new Error(`predict: detection has ${n} scores, ${detection.boxes.length / 4} boxes and ${detection.masks.length} masks`);
  }
  const instances: MaskInstance[] = [];
  for (let i = 0; i < n; i++) {
    const mask = detection.masks[i]!;
    if (mask.length !== width * height) throw new Error(`predict: mask ${i} has ${mask.length} pixels, the image ${width}x${height}`);
    const box: Box = [detection.boxes[4 * i]!, detection.boxes[4 * i + 1]!, detection.boxes[4 * i + 2]!, detection.boxes[4 * i + 3]!];
    // A pasted mask lies inside its box (clipped to the image): cut that rectangle, not the whole image.
    const x0 = clamp(Math.floor(box[1]), 0, width);
    const y0 = clamp(Math.floor(box[0]), 0, height);
    const x1 = clamp(Math.ceil(box[3]), x0, width);
    const y1 = clamp(Math.ceil(box[2]), y0, height);
    const crop: CropMask = tightenCrop(subCrop({ x: 0, y: 0, width, height, data: mask }, x0, y0, x1 - x0, y1 - y0));
    if (cropArea(crop) === 0) continue;
    instances.push({ score: detection.scores[i]!, box, mask: crop });
  }
  return instances;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}

/** One detector call for the images (and their mirror images with TTA), merged per image. */
async function detectWithTta(images: Image8[], detect: DetectFn, options: PredictOptions): Promise<MaskInstance[][]> {
  const inputs = options.tta === 'hflip' ? [...images, ...images.map(flipImageHorizontally)] : images;
  const detections = await detect(inputs);
  if (detections.length !== inputs.length) throw new Error(`predict: the detector returned ${detections.length} results for ${inputs.length} images`);
  return images.map((image, i) => {
    const { width, height } = image;
    const plain = detectionToInstances(detections[i]!, width, height);
    if (options.tta === 'none') return plain;
    const mirrored = flipInstancesBack(detectionToInstances(detections[images.length + i]!, width, height), width);
    return mergeFlipUnion(plain, mirrored, width, height, options.flipMerge);
  });
}

/** Mask pixels the image would keep after post-processing. */
function keptPixels(instances: readonly MaskInstance[], width: number, height: number, check: CleanOptions): number {
  return cleanMasks(instances, width, height, check).instances.reduce((sum, instance) => sum + cropArea(instance.mask), 0);
}

/** The zoomed pass for these images (see small-nuclei.ts): their instances at twice the scale. */
async function zoomIn(images: Image8[], firstPass: MaskInstance[][], detectors: Detectors, options: PredictOptions): Promise<MaskInstance[][]> {
  if (options.smallNuclei.mode === 'upscale') {
    if (!detectors.detectUpscaled) throw new Error('predict: the upscale zoom needs a detector at twice the input size');
    return detectWithTta(images, detectors.detectUpscaled, options);
  }
  const tiling = images.map((image, i) => quarterTiles(image.width, image.height, tileOverlap(firstPass[i]!)));
  const tileImages = images.flatMap((image, i) => tiling[i]!.map((tile) => cropImage(image, tile)));
  const perTile = await detectWithTta(tileImages, detectors.detect, options);
  return images.map((image, i) => mergeTiles(perTile.slice(4 * i, 4 * i + 4), tiling[i]!, image.width, image.height));
}

/**
 * Predicts a group of images (one detector call, two with TTA, plus one for the retried images and one for
 * the zoomed ones). The retry's instances replace the first pass's when they keep more mask pixels after
 * post-processing; the zoomed pass replaces it outright.
 */
export async function predictImages(images: Image8[], detectors: Detectors | DetectFn, options: PredictOptions = defaultPredictOptions): Promise<ImageOutcome[]> {
  if (images.length === 0) return [];
  const { detect, networkSize } = typeof detectors === 'function' ? { detect: detectors, networkSize: 0 } : detectors;
  const first = await detectWithTta(images, detect, options);
  const outcomes: ImageOutcome[] = first.map((instances) => ({ instances, retried: false, retryUsed: false, zoomed: false }));

  const zoom = images.map((image, index) => ({ image, index })).filter(({ image, index }) => needsZoom(first[index]!, image.width, image.height, networkSize, options.smallNuclei));
  if (zoom.length > 0) {
    if (typeof detectors === 'function') throw new Error('predict: the small-nuclei zoom needs the detectors and the network size');
    const zoomed = await zoomIn(zoom.map(({ image }) => image), zoom.map(({ index }) => first[index]!), detectors, options);
    zoom.forEach(({ index }, k) => (outcomes[index] = { instances: zoomed[k]!, retried: false, retryUsed: false, zoomed: true }));
  }
  if (!options.scaleDownRetry) return outcomes;

  const retry = images
    .map((image, index) => ({ image, index }))
    .filter(({ image, index }) => {
      const cleaned = cleanMasks(outcomes[index]!.instances, image.width, image.height, options.retryCheck).instances;
      return needsScaleDownRetry(cleaned, image.width, image.height, options.scaleDown);
    });
  if (retry.length === 0) return outcomes;
  const canvases = retry.map(({ image }) => pasteTopLeft(image, options.scaleDown.factor));
  const second = await detectWithTta(canvases, detect, options);
  retry.forEach(({ image, index }, k) => {
    const { width, height } = image;
    const instances = cropBackInstances(second[k]!, width, height);
    const current = outcomes[index]!.instances;
    const better = keptPixels(instances, width, height, options.retryCheck) > keptPixels(current, width, height, options.retryCheck);
    outcomes[index] = { instances: better ? instances : current, retried: true, retryUsed: better, zoomed: outcomes[index]!.zoomed && !better };
  });
  return outcomes;
}
