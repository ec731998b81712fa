import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cropFromFullMask, cropToFullMask } from '../../stages/evaluate/crop-mask.js';
import { connectedComponents } from '../../stages/imaging/components.js';
import type { Image8 } from '../../stages/imaging/dataset.js';
import type { Detection } from '../../stages/model/mask-rcnn.js';
import { defaultPredictOptions, predictImages, type DetectFn, type PredictOptions } from '../../stages/predict/predict-core.js';
import type { MaskInstance } from '../../stages/predict/predictions.js';
import { cropImage, medianDiameter, mergeTiles, needsZoom, quarterTiles, tileOverlap } from '../../stages/predict/small-nuclei.js';

/** A grey image (20) with bright (220) squares [x, y, side]. */
function imageWith(width: number, height: number, squares: Array<[number, number, number]>): Image8 {
  const data = new Uint8Array(width * height).fill(20);
  for (const [x0, y0, side] of squares) for (let y = y0; y < y0 + side; y++) data.fill(220, y * width + x0, y * width + x0 + side);
  return { width, height, channels: 1, data };
}

/** An instance with a square mask at [x, y, side] of a width x height image. */
function square(x: number, y: number, side: number, score: number, width: number, height: number): MaskInstance {
  const full = new Uint8Array(width * height);
  for (let row = y; row < y + side; row++) full.fill(1, row * width + x, row * width + x + side);
  return { score, box: [y, x, y + side, x + side], mask: cropFromFullMask(full, width, height) };
}

/** A stand-in detector that sees every bright piece of at least `minSide` pixels across (a network's blind spot). */
function detector(minSide: number, calls: string[]): DetectFn {
  return (images) => images.map((image): Detection => {
    calls.push(`${image.width}x${image.height}`);
    const bright = Uint8Array.from({ length: image.width * image.height }, (_, p) => (image.data[p * image.channels]! > 128 ? 1 : 0));
    const { labels, count } = connectedComponents(bright, image.width, image.height, 8);
    const masks: Uint8Array[] = [];
    for (let k = 1; k <= count; k++) {
      const mask = Uint8Array.from(labels, (label) => (label === k ? 1 : 0));
      const crop = cropFromFullMask(mask, image.width, image.height);
      if (Math.max(crop.width, crop.height) >= minSide) masks.push(mask);
    }
    const boxes = new Float32Array(masks.length * 4);
    masks.forEach((mask, i) => {
      const crop = cropFromFullMask(mask, image.width, image.height);
      boxes.set([crop.y, crop.x, crop.y + crop.height, crop.x + crop.width], 4 * i);
    });
    return { boxes, scores: Float32Array.from(masks, () => 0.9), classIds: new Int32Array(masks.length).fill(1), masks };
  });
}

test('the median equivalent diameter: a 10 x 10 square is 11.3 px wide; no instance is NaN', () => {
  const instances = [square(0, 0, 10, 1, 40, 40), square(20, 0, 10, 1, 40, 40), square(0, 20, 30, 1, 40, 40)];
  assert.equal(medianDiameter(instances).toFixed(2), Math.sqrt(400 / Math.PI).toFixed(2));
  assert.ok(Number.isNaN(medianDiameter([])));
});

test('zoom when the nuclei at the network scale are narrower than the threshold, never for an empty first pass', () => {
  const small = [square(0, 0, 10, 1, 1024, 1024)]; // 11.3 px wide; at 512 / 1024 = 5.6 px
  const on = { mode: 'tile', minDiameter: 10 } as const;
  assert.equal(needsZoom(small, 1024, 1024, 512, on), true);
  assert.equal(needsZoom(small, 256, 256, 512, on), false, 'the same nucleus in a 256 px image is 22.6 px at 512');
  assert.equal(needsZoom(small, 1024, 1024, 512, { mode: 'none', minDiameter: 10 }), false);
  assert.equal(needsZoom([], 1024, 1024, 512, on), false);
});

test('four tiles cover the image, overlapping by the overlap across each seam', () => {
  const tiles = quarterTiles(101, 60, 20);
  assert.deepEqual(tiles, [
    { x: 0, y: 0, width: 61, height: 40 }, { x: 40, y: 0, width: 61, height: 40 },
    { x: 0, y: 20, width: 61, height: 40 }, { x: 40, y: 20, width: 61, height: 40 },
  ]);
  const covered = new Uint8Array(101 * 60);
  for (const t of tiles) for (let y = t.y; y < t.y + t.height; y++) covered.fill(1, y * 101 + t.x, y * 101 + t.x + t.width);
  assert.ok(covered.every((v) => v === 1));
  assert.equal(tileOverlap([square(0, 0, 25, 1, 100, 100)]), 50);
  assert.equal(tileOverlap([]), 32);
  const image = imageWith(8, 4, [[5, 1, 2]]);
  assert.deepEqual(Array.from(cropImage(image, { x: 4, y: 1, width: 3, height: 2 }).data), [20, 220, 220, 20, 220, 220]);
});

test('merging tiles: an instance cut by a seam is dropped, one seen whole from two tiles is kept once, in the image frame', () => {
  const [width, height] = [100, 100];
  const tiles = quarterTiles(width, height, 40); // x: [0, 70) and [30, 100)
  const inTile = (t: number, x: number, y: number, side: number, score: number) => square(x - tiles[t]!.x, y - tiles[t]!.y, side, score, tiles[t]!.width, tiles[t]!.height);
  const merged = mergeTiles([
    [inTile(0, 10, 10, 8, 0.9), inTile(0, 45, 12, 10, 0.8), inTile(0, 62, 40, 8, 0.7)], // the last reaches tile 0's right seam
    [inTile(1, 45, 12, 10, 0.85), inTile(1, 60, 40, 10, 0.6)], // the same nucleus at 45,12; the whole of the cut one
    [], [],
  ], tiles, width, height);
  const placed = merged.map((m) => [m.mask.x, m.mask.y, m.mask.width, m.score]);
  assert.deepEqual(placed, [[10, 10, 8, 0.9], [45, 12, 10, 0.85], [60, 40, 10, 0.6]]);
  assert.deepEqual(merged[1]!.box, [12, 45, 22, 55]);
});

test('predict with the tile zoom: nuclei the network misses at 1x are found in the tiles, at their place in the image', async () => {
  // The stand-in network works in image pixels, so its blind spot is set by hand: on the whole image it sees
  // pieces of 12 px and more (the 14 px nucleus, not the three 8 px ones); on a tile — twice the scale for a real
  // network — it sees 8 px ones. The first pass's median nucleus at the network's scale: 14 * 32 / 64 = 7 < 10.
  const image = imageWith(64, 64, [[4, 4, 14], [40, 6, 8], [6, 44, 8], [44, 44, 8]]);
  const calls: string[] = [];
  const first = detector(12, calls);
  // In a tile the pieces are still 8 px: a tile detector that sees 8 px (what 2x the scale buys a real network).
  const tileCalls: string[] = [];
  const tileDetector = detector(8, tileCalls);
  const detect: DetectFn = (images) => (images[0]!.width === 64 ? first(images) : tileDetector(images));
  const opts: PredictOptions = { ...defaultPredictOptions, tta: 'none', scaleDownRetry: false, smallNuclei: { mode: 'tile', minDiameter: 10 } };
  const [outcome] = await predictImages([image], { detect, networkSize: 32 }, opts);
  assert.equal(outcome!.zoomed, true);
  assert.equal(tileCalls.length, 4, 'four tiles');
  const found = outcome!.instances.map((m) => [m.mask.x, m.mask.y, m.mask.width]).sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  assert.deepEqual(found, [[4, 4, 14], [6, 44, 8], [40, 6, 8], [44, 44, 8]]);
  const again = await predictImages([image], { detect, networkSize: 32 }, { ...opts, smallNuclei: { mode: 'none', minDiameter: 10 } });
  assert.equal(again[0]!.zoomed, false);
  assert.equal(again[0]!.instances.length, 1, 'without the zoom only the big one');
  assert.deepEqual(Array.from(cropToFullMask(again[0]!.instances[0]!.mask, 64, 64)).filter(Boolean).length, 14 * 14);
});

test('the upscale zoom uses the 2S detector, and refuses to run without one', async () => {
  const image = imageWith(64, 64, [[4, 4, 14], [40, 6, 8]]);
  const calls: string[] = [];
  const upscaledCalls: string[] = [];
  const opts: PredictOptions = { ...defaultPredictOptions, tta: 'none', scaleDownRetry: false, smallNuclei: { mode: 'upscale', minDiameter: 10 } };
  const [outcome] = await predictImages([image], { detect: detector(12, calls), networkSize: 32, detectUpscaled: detector(8, upscaledCalls) }, opts);
  assert.deepEqual(upscaledCalls, ['64x64']);
  assert.equal(outcome!.instances.length, 2);
  await assert.rejects(predictImages([image], { detect: detector(12, []), networkSize: 32 }, opts), /needs a detector at twice the input size/);
});
