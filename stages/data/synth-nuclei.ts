// Synthetic nuclei: random shapes, their placement on an image, and the exact instance-label map they make.
//
// A nucleus is an ellipse whose radius is modulated by a few low harmonics (irregularity 0 gives a perfect
// ellipse). A pixel belongs to a nucleus when its centre (x + 0.5, y + 0.5) lies inside the shape; nuclei
// placed later lie on top of earlier ones, so the label map is a partition and the masks are exact by
// construction: the renderer colours each pixel from this same map.
import type { LabelMap } from '../imaging/dataset.js';
import { relabel, labelAreas } from '../imaging/components.js';

export type Random = () => number;

export interface Range {
  min: number;
  max: number;
}

export interface NucleusShape {
  cx: number;
  cy: number;
  /** Semi-axes in pixels (a along `angle`, b across it). */
  a: number;
  b: number;
  angle: number;
  /** Boundary modulation: radius factor 1 + Σ amplitude·cos(order·θ + phase). */
  harmonics: { order: number; amplitude: number; phase: number }[];
}

export interface PlacementOptions {
  width: number;
  height: number;
  /** How many nuclei to try to place. */
  count: number;
  /** The image's typical radius; each nucleus varies ±25% around it, clamped to `radius`. */
  meanRadius: number;
  radius: Range;
  /** 0 = ellipses; 0.2 = clearly irregular outlines. */
  irregularity: number;
  /** Largest ratio of the long to the short semi-axis. */
  maxElongation: number;
  /** 'separated': a gap of at least 2 px between nuclei, all fully inside the image. 'touching': neighbours
   *  may touch and overlap slightly, and nuclei may be cut by the image border, as in the real set. */
  placement: 'separated' | 'touching';
}

export const uniform = (random: Random, range: Range): number => range.min + (range.max - range.min) * random();

/** Largest distance from the centre to the outline: a bounding radius for placement and rasterising. */
export function boundingRadius(shape: NucleusShape): number {
  const modulation = shape.harmonics.reduce((sum, h) => sum + Math.abs(h.amplitude), 0);
  return Math.max(shape.a, shape.b) * (1 + modulation);
}

/** Whether the point (x, y) lies inside the nucleus outline. */
export function containsPoint(shape: NucleusShape, x: number, y: number): boolean {
  const dx = x - shape.cx;
  const dy = y - shape.cy;
  const cos = Math.cos(shape.angle);
  const sin = Math.sin(shape.angle);
  const u = (dx * cos + dy * sin) / shape.a;
  const v = (-dx * sin + dy * cos) / shape.b;
  const rho = Math.hypot(u, v);
  if (shape.harmonics.length === 0) return rho <= 1;
  const theta = Math.atan2(v, u);
  let limit = 1;
  for (const h of shape.harmonics) limit += h.amplitude * Math.cos(h.order * theta + h.phase);
  return rho <= limit;
}

function randomShape(random: Random, options: PlacementOptions, cx: number, cy: number): NucleusShape {
  const r = Math.min(options.radius.max, Math.max(options.radius.min, options.meanRadius * (0.75 + 0.5 * random())));
  const elongation = 1 + (options.maxElongation - 1) * random();
  // Keep the area of a circle of radius r: a·b = r².
  const a = r * Math.sqrt(elongation);
  const b = r / Math.sqrt(elongation);
  const harmonics =
    options.irregularity > 0
      ? [2, 3, 4].map((order) => ({
          order,
          amplitude: (options.irregularity * random()) / (order - 1),
          phase: 2 * Math.PI * random(),
        }))
      : [];
  return { cx, cy, a, b, angle: Math.PI * random(), harmonics };
}

/**
 * Places up to `options.count` nuclei by rejection sampling (at most 50 tries each); fewer come back when the
 * image is full.
 */
export function placeNuclei(random: Random, options: PlacementOptions): NucleusShape[] {
  const placed: NucleusShape[] = [];
  const separated = options.placement === 'separated';
  for (let n = 0; n < options.count; n++) {
    for (let attempt = 0; attempt < 50; attempt++) {
      // Draw the shape first so its size decides how far from the border its centre must stay.
      const probe = randomShape(random, options, 0, 0);
      const reach = boundingRadius(probe);
      const margin = separated ? reach + 1 : -reach / 2;
      if (options.width - 2 * margin <= 0 || options.height - 2 * margin <= 0) continue;
      const shape = {
        ...probe,
        cx: margin + (options.width - 2 * margin) * random(),
        cy: margin + (options.height - 2 * margin) * random(),
      };
      const fits = placed.every((other) => {
        const distance = Math.hypot(shape.cx - other.cx, shape.cy - other.cy);
        const reaches = reach + boundingRadius(other);
        // Touching nuclei may interpenetrate by up to 15% of their summed reach: slight overlap only.
        return separated ? distance >= reaches + 2 : distance >= 0.85 * reaches;
      });
      if (fits) {
        placed.push(shape);
        break;
      }
    }
  }
  return placed;
}

/** Draws the nuclei in order (later on top) into a label map: label k + 1 for nuclei[k]. */
export function rasteriseNuclei(nuclei: readonly NucleusShape[], width: number, height: number): LabelMap {
  if (nuclei.length > 0xffff) throw new Error(`${nuclei.length} nuclei do not fit a 16-bit label map`);
  const data = new Uint16Array(width * height);
  nuclei.forEach((shape, k) => {
    const reach = boundingRadius(shape);
    const x0 = Math.max(0, Math.floor(shape.cx - reach));
    const x1 = Math.min(width - 1, Math.ceil(shape.cx + reach));
    const y0 = Math.max(0, Math.floor(shape.cy - reach));
    const y1 = Math.min(height - 1, Math.ceil(shape.cy + reach));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        if (containsPoint(shape, x + 0.5, y + 0.5)) data[y * width + x] = k + 1;
      }
    }
  });
  return { width, height, data, count: nuclei.length };
}

/**
 * Makes every nucleus one connected piece of a useful size: a nucleus that an overlap cut into pieces keeps
 * its largest piece (the others become background), and nuclei smaller than `minArea` pixels are dropped.
 * Returns the cleaned map (labels 1..n in raster order) and how many nuclei and stray pieces were removed.
 */
export function cleanLabels(labels: LabelMap, minArea: number): { labels: LabelMap; droppedNuclei: number; strayPieces: number } {
  const pieces = relabel(labels, 8);
  const pieceAreas = labelAreas(pieces);
  // For each original nucleus, the piece with the largest area.
  const bestPiece = new Uint32Array(labels.count + 1);
  const bestArea = new Uint32Array(labels.count + 1);
  const owner = new Uint32Array(pieces.count + 1);
  for (let i = 0; i < pieces.data.length; i++) owner[pieces.data[i]!] = labels.data[i]!;
  let strayPieces = 0;
  for (let piece = 1; piece <= pieces.count; piece++) {
    const nucleus = owner[piece]!;
    if (bestPiece[nucleus] !== 0) strayPieces++;
    if (pieceAreas[piece]! > bestArea[nucleus]!) {
      bestArea[nucleus] = pieceAreas[piece]!;
      bestPiece[nucleus] = piece;
    }
  }
  const keep = new Uint8Array(pieces.count + 1);
  let kept = 0;
  for (let nucleus = 1; nucleus <= labels.count; nucleus++) {
    if (bestPiece[nucleus] !== 0 && bestArea[nucleus]! >= minArea) {
      keep[bestPiece[nucleus]!] = 1;
      kept++;
    }
  }
  const data = new Uint16Array(labels.data.length);
  const renumber = new Uint16Array(pieces.count + 1);
  let next = 0;
  for (let i = 0; i < data.length; i++) {
    const piece = pieces.data[i]!;
    if (piece === 0 || keep[piece] === 0) continue;
    if (renumber[piece] === 0) renumber[piece] = ++next;
    data[i] = renumber[piece]!;
  }
  return {
    labels: { width: labels.width, height: labels.height, data, count: next },
    droppedNuclei: labels.count - kept,
    strayPieces,
  };
}
