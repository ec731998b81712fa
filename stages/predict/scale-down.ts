// The recipe's "scale-down retry": when an image ends with (almost) no mask pixels after post-processing —
// typically a few huge nuclei that the network, trained on smaller ones, does not recognise — paste it into
// the top-left corner of a black canvas 4x as tall and 4x as wide, predict again (the model's resize to 512
// then shrinks the nuclei 4x), crop the masks back to the image, and post-process those.
import type { Image8 } from '../imaging/dataset.js';
import { cropArea, subCrop, tightenCrop } from '../evaluate/crop-mask.js';
import type { MaskInstance } from './predictions.js';

export interface ScaleDownOptions {
  /** Canvas size as a multiple of the image's (the original: 4). */
  factor: number;
  /** Retry when the image's mask pixels, all instances together, number fewer than this (the original: 2). */
  minPixels: number;
  /** …or fewer than this fraction of the image's pixels (0 = off; e.g. 0.001 retries on near-empty images too). */
  minFraction: number;
}

export const defaultScaleDownOptions: ScaleDownOptions = { factor: 4, minPixels: 2, minFraction: 0 };

/**
 * Whether the image needs the retry: total mask pixels < max(minPixels, minFraction * width * height).
 * The original's rule is `masks.sum() < 2` after post-processing, i.e. no nucleus left (minPixels 2).
 */
export function needsScaleDownRetry(
  instances: readonly MaskInstance[],
  width: number,
  height: number,
  options: Pick<ScaleDownOptions, 'minPixels' | 'minFraction'> = defaultScaleDownOptions,
): boolean {
  let total = 0;
  for (const { mask } of instances) total += cropArea(mask);
  return total < Math.max(options.minPixels, options.minFraction * width * height);
}

/** The image pasted into the top-left corner of a black (factor * width) x (factor * height) canvas. */
export function pasteTopLeft(image: Image8, factor: number = defaultScaleDownOptions.factor): Image8 {
  if (!Number.isInteger(factor) || factor < 1) throw new Error(`scale-down factor must be a whole number >= 1, got ${factor}`);
  const { width, height, channels } = image;
  const canvasWidth = width * factor;
  const data = new Uint8Array(canvasWidth * height * factor * channels);
  const rowBytes = width * channels;
  for (let y = 0; y < height; y++) {
    data.set(image.data.subarray(y * rowBytes, (y + 1) * rowBytes), y * canvasWidth * channels);
  }
  return { width: canvasWidth, height: height * factor, channels, data };
}

/**
 * Instances predicted on the canvas, cut back to the original width x height: masks are clipped to the
 * image (instances left empty are dropped), boxes clipped to it.
 */
export function cropBackInstances(instances: readonly MaskInstance[], width: number, height: number): MaskInstance[] {
  const result: MaskInstance[] = [];
  for (const { score, box, mask } of instances) {
    const x0 = Math.min(mask.x, width);
    const y0 = Math.min(mask.y, height);
    const clipped = tightenCrop(subCrop(mask, x0, y0, Math.max(0, Math.min(mask.x + mask.width, width) - x0), Math.max(0, Math.min(mask.y + mask.height, height) - y0)));
    if (cropArea(clipped) === 0) continue;
    result.push({
      score,
      box: [Math.min(box[0], height), Math.min(box[1], width), Math.min(box[2], height), Math.min(box[3], width)],
      mask: clipped,
    });
  }
  return result;
}
