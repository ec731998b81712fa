// Overlay pictures for a person to judge predictions by eye, as in the original's figures: the raw image on
// the left, and on the right the same image with ground-truth outlines in red and predicted outlines in blue
// (yellow where the two coincide). Small images are enlarged (nearest neighbour) so 1-pixel outlines read.
import sharp from 'sharp';
import type { Image8 } from '../imaging/dataset.js';
import type { CropMask } from './crop-mask.js';

// Pure red, and a light blue that stays visible on the purple of stained tissue; yellow = both agree.
const red: readonly number[] = [255, 0, 0];
const blue: readonly number[] = [0, 170, 255];
const yellow: readonly number[] = [255, 255, 0];
/** Width of the black gap between the two panels, in output pixels. */
const gap = 4;

/** An image as 3-channel RGB (grey repeated, alpha dropped). data: [height * width * 3]. */
export function toRgb(image: Image8): Uint8Array {
  const { width, height, channels, data } = image;
  if (channels === 3) return data;
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) rgb[p * 3 + c] = data[p * channels + (channels === 1 ? 0 : c)]!;
  }
  return rgb;
}

/**
 * Marks the outline (inner boundary: a mask pixel with a 4-neighbour outside the mask or the image) of each
 * crop into `outline` with bit `bit`. outline: [height * width].
 */
export function markOutlines(outline: Uint8Array, crops: readonly CropMask[], width: number, height: number, bit: number): void {
  for (const crop of crops) {
    const w = crop.width;
    const h = crop.height;
    const on = (x: number, y: number): boolean => x >= 0 && y >= 0 && x < w && y < h && crop.data[y * w + x] !== 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        if (!on(x, y)) continue;
        const ix = crop.x + x;
        const iy = crop.y + y;
        const border = ix === 0 || iy === 0 || ix === width - 1 || iy === height - 1;
        if (border || !on(x - 1, y) || !on(x + 1, y) || !on(x, y - 1) || !on(x, y + 1)) outline[iy * width + ix]! |= bit;
      }
    }
  }
}

/** The enlargement factor: small images are scaled up so that each panel's long side is about 640 pixels. */
export function overlayScale(width: number, height: number): number {
  return Math.max(1, Math.min(4, Math.round(640 / Math.max(width, height))));
}

/**
 * The side-by-side overlay picture (raw | outlines) as RGB pixels. truth may be empty (submission-only mode:
 * predictions alone). Returns [outHeight * outWidth * 3].
 */
export function renderOverlay(image: Image8, truth: readonly CropMask[], predictions: readonly CropMask[]): { width: number; height: number; data: Uint8Array } {
  const { width, height } = image;
  const rgb = toRgb(image);
  const outline = new Uint8Array(width * height); // bit 1 = truth, bit 2 = prediction
  markOutlines(outline, truth, width, height, 1);
  markOutlines(outline, predictions, width, height, 2);
  const scale = overlayScale(width, height);
  const panelWidth = width * scale;
  const outWidth = panelWidth * 2 + gap;
  const outHeight = height * scale;
  const out = new Uint8Array(outWidth * outHeight * 3);
  for (let oy = 0; oy < outHeight; oy++) {
    const y = Math.floor(oy / scale);
    for (let ox = 0; ox < panelWidth; ox++) {
      const x = Math.floor(ox / scale);
      const p = y * width + x;
      const left = (oy * outWidth + ox) * 3;
      const right = (oy * outWidth + panelWidth + gap + ox) * 3;
      const mark = outline[p]!;
      const colour = mark === 1 ? red : mark === 2 ? blue : mark === 3 ? yellow : undefined;
      for (let c = 0; c < 3; c++) {
        out[left + c] = rgb[p * 3 + c]!;
        out[right + c] = colour ? colour[c]! : rgb[p * 3 + c]!;
      }
    }
  }
  return { width: outWidth, height: outHeight, data: out };
}

/** Writes the overlay picture as a PNG. */
export async function writeOverlay(file: string, image: Image8, truth: readonly CropMask[], predictions: readonly CropMask[]): Promise<void> {
  const picture = renderOverlay(image, truth, predictions);
  await sharp(picture.data, { raw: { width: picture.width, height: picture.height, channels: 3 } })
    .png({ compressionLevel: 6 })
    .toFile(file);
}

export interface OverlayEntry {
  id: string;
  file: string;
  score?: number;
  modality?: string;
  truth?: number;
  predicted: number;
}

/** A small HTML page listing the overlays (a person opens it in a browser); text is HTML-escaped. */
export function overlayIndexHtml(entries: readonly OverlayEntry[], title: string): string {
  const escape = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const rows = entries.map((entry) => {
    const facts = [
      entry.score !== undefined ? `score ${entry.score.toFixed(3)}` : undefined,
      entry.modality,
      entry.truth !== undefined ? `${entry.truth} true` : undefined,
      `${entry.predicted} predicted`,
    ].filter((fact): fact is string => fact !== undefined);
    return `<figure><img src="${escape(entry.file)}" loading="lazy"><figcaption>${escape(entry.id)}<br>${escape(facts.join(' · '))}</figcaption></figure>`;
  });
  return [
    '<!doctype html>',
    `<meta charset="utf-8"><title>${escape(title)}</title>`,
    '<style>body{font:14px sans-serif;background:#222;color:#ddd}figure{display:inline-block;margin:8px}img{max-width:900px}</style>',
    `<h1>${escape(title)}</h1>`,
    '<p>Left: the image. Right: ground truth in red, predictions in blue, yellow where they coincide.</p>',
    ...rows,
    '',
  ].join('\n');
}
