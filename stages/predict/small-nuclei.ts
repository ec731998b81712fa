// A second look at images whose nuclei are too small for the network: the model molds every image to its
// input size S, so a 1024 px image with 15 px nuclei shows them 7 px wide, under the smallest anchor (8 px at
// P2) — the RPN barely proposes them. When the first pass's nuclei come out smaller than `minDiameter` network
// pixels (median equivalent diameter), the image is predicted again at twice the scale, in one of two ways:
//
//   tile     four overlapping quarter images, each molded to S (the same network, 4 passes); an instance is
//            kept from the tile that holds it whole (it touches no seam edge), duplicates from the overlap are
//            merged by mask IoU
//   upscale  the whole image through the network at 2S (the same weights; anchors and heads work at any size)
//
// The zoomed pass replaces the first one for that image. Which helps (and at what cost) is measured in
// RESULTS.md ("small nuclei: tile or upscale").
import type { Image8 } from '../imaging/dataset.js';
import { cropArea, type CropMask } from '../evaluate/crop-mask.js';
import { overlaps } from '../evaluate/metric.js';
import type { MaskInstance } from './predictions.js';

export const smallNucleiModes = ['none', 'tile', 'upscale'] as const;
export type SmallNucleiMode = (typeof smallNucleiModes)[number];

export interface SmallNucleiOptions {
  mode: SmallNucleiMode;
  /** Zoom when the median nucleus of the first pass is narrower than this, in network pixels. */
  minDiameter: number;
}

/** Off by default: the recipe predicts every image once at S. */
export const defaultSmallNucleiOptions: SmallNucleiOptions = { mode: 'none', minDiameter: 10 };

/** Two instances of the tiles' overlap with a mask IoU above this are one nucleus seen twice. */
const DUPLICATE_IOU = 0.5;

/** A tile of the image: its top-left corner and size, in image pixels. */
export interface TileRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Median equivalent diameter (the width of a disc of the same area) of the instances, in image pixels. */
export function medianDiameter(instances: readonly MaskInstance[]): number {
  if (instances.length === 0) return Number.NaN;
  const diameters = instances.map((instance) => Math.sqrt((4 * cropArea(instance.mask)) / Math.PI)).sort((a, b) => a - b);
  const mid = diameters.length >> 1;
  return diameters.length % 2 ? diameters[mid]! : (diameters[mid - 1]! + diameters[mid]!) / 2;
}

/**
 * Whether the first pass's nuclei, at the network's scale (S / the image's long side), are narrower than
 * minDiameter. An image with no instance is left alone: that is the scale-down retry's case (nuclei too big).
 */
export function needsZoom(instances: readonly MaskInstance[], width: number, height: number, networkSize: number, options: SmallNucleiOptions): boolean {
  if (options.mode === 'none' || instances.length === 0) return false;
  return medianDiameter(instances) * (networkSize / Math.max(width, height)) < options.minDiameter;
}

/**
 * The 2 x 2 tiles covering the image, each overlapping its neighbour by `overlap` pixels across the seam (so a
 * nucleus narrower than overlap / 2 lies whole in at least one tile).
 */
export function quarterTiles(width: number, height: number, overlap: number): TileRect[] {
  const span = (size: number): Array<[number, number]> => {
    const half = Math.ceil(size / 2);
    const reach = Math.min(size, half + Math.ceil(overlap / 2));
    return [[0, reach], [size - reach, reach]];
  };
  const tiles: TileRect[] = [];
  for (const [y, h] of span(height)) for (const [x, w] of span(width)) tiles.push({ x, y, width: w, height: h });
  return tiles;
}

/** The pixels of one tile, as an image of its own. */
export function cropImage(image: Image8, tile: TileRect): Image8 {
  const { channels } = image;
  const data = new Uint8Array(tile.width * tile.height * channels);
  const rowBytes = tile.width * channels;
  for (let row = 0; row < tile.height; row++) {
    const from = ((tile.y + row) * image.width + tile.x) * channels;
    data.set(image.data.subarray(from, from + rowBytes), row * rowBytes);
  }
  return { width: tile.width, height: tile.height, channels, data };
}

/** Whether the crop (in tile coordinates) touches an edge of the tile that lies inside the image (a seam). */
function touchesSeam(mask: CropMask, tile: TileRect, imageWidth: number, imageHeight: number): boolean {
  return (tile.x > 0 && mask.x === 0) ||
    (tile.y > 0 && mask.y === 0) ||
    (tile.x + tile.width < imageWidth && mask.x + mask.width === tile.width) ||
    (tile.y + tile.height < imageHeight && mask.y + mask.height === tile.height);
}

/**
 * The tiles' instances in the image's frame: those cut by a seam dropped (the neighbouring tile holds them
 * whole), and of two instances that are one nucleus seen from two tiles (mask IoU > 0.5), the higher-scoring
 * one kept. Sorted by score, highest first.
 */
export function mergeTiles(perTile: readonly (readonly MaskInstance[])[], tiles: readonly TileRect[], imageWidth: number, imageHeight: number): MaskInstance[] {
  const placed: MaskInstance[] = [];
  perTile.forEach((instances, t) => {
    const tile = tiles[t]!;
    for (const { score, box, mask } of instances) {
      if (touchesSeam(mask, tile, imageWidth, imageHeight)) continue;
      placed.push({
        score,
        box: [box[0] + tile.y, box[1] + tile.x, box[2] + tile.y, box[3] + tile.x],
        mask: { ...mask, x: mask.x + tile.x, y: mask.y + tile.y },
      });
    }
  });
  placed.sort((a, b) => b.score - a.score);
  const masks = placed.map((instance) => instance.mask);
  const dropped = new Uint8Array(placed.length);
  // Greedy, highest score first: a kept instance drops every later one it duplicates.
  const pairs = overlaps(masks, masks, imageWidth, imageHeight)
    .map(({ truth, prediction, intersection, union }) => ({ first: Math.min(truth, prediction), second: Math.max(truth, prediction), iou: intersection / union }))
    .filter((pair) => pair.first !== pair.second && pair.iou > DUPLICATE_IOU)
    .sort((a, b) => a.first - b.first || a.second - b.second);
  for (const { first, second } of pairs) if (!dropped[first]) dropped[second] = 1;
  return placed.filter((_, i) => !dropped[i]);
}

/** Overlap between tiles: twice the widest nucleus of the first pass (at least 32 px), so each lies whole in one. */
export function tileOverlap(instances: readonly MaskInstance[]): number {
  let widest = 0;
  for (const { mask } of instances) widest = Math.max(widest, mask.width, mask.height);
  return Math.max(32, 2 * widest);
}
