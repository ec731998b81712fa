// The CPU profile's training input: a window of the molded image, at the molded image's scale.
//
// The recipe trains on whole images molded to 512 px. On two CPU cores a 512 px step costs ~4x a 256 px one, so
// the cpu profile keeps the recipe's pixel scale (the image molded as for a 512 input, after every recipe
// augmentation) and trains on a 256 px window of it; the network is fully convolutional, so the weights then
// predict on the whole 512-molded image. Molding every image to 256 instead (what the profile did before)
// halves every nucleus: the stage-1 test images with 100-300 px² nuclei ended 3-6 px wide, under the smallest
// anchor, and scored 0.02-0.09 (issue notes, 40-epoch model).
import { compactLabels } from '../imaging/components.js';
import { cropPair, type Pair } from './augment-geometry.js';

/**
 * A random `side` x `side` window of a square sample that holds at least one nucleus: `tries` uniform positions,
 * then a window centred (as far as the borders allow) on a random labelled pixel. Labels are renumbered 1..n.
 * A sample without any nucleus gets its uniform window. `side` >= the sample's side returns the sample.
 */
export function cropInput(pair: Pair, side: number, random: () => number, tries = 3): Pair & { x: number; y: number } {
  const { width, height } = pair.image;
  if (side >= width && side >= height) return { ...pair, x: 0, y: 0 };
  const w = Math.min(side, width);
  const h = Math.min(side, height);
  const place = (x: number, y: number): Pair & { x: number; y: number } => {
    const cropped = cropPair(pair, x, y, w, h);
    return { image: cropped.image, labels: compactLabels(cropped.labels), x, y };
  };
  let fallback: Pair & { x: number; y: number } | undefined;
  for (let attempt = 0; attempt < tries; attempt++) {
    const x = Math.floor(random() * (width - w + 1));
    const y = Math.floor(random() * (height - h + 1));
    const window = place(x, y);
    if (window.labels.count > 0) return window;
    fallback ??= window;
  }
  const labelled = labelledPixels(pair.labels.data);
  if (labelled.length === 0) return fallback ?? place(0, 0);
  const pixel = labelled[Math.floor(random() * labelled.length)]!;
  const cx = pixel % width;
  const cy = Math.floor(pixel / width);
  const x = Math.max(0, Math.min(width - w, cx - Math.floor(w / 2)));
  const y = Math.max(0, Math.min(height - h, cy - Math.floor(h / 2)));
  return place(x, y);
}

function labelledPixels(labels: Uint16Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < labels.length; i++) if (labels[i] !== 0) out.push(i);
  return out;
}
