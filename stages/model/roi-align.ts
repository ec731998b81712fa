// Pyramid ROIAlign (Matterport's PyramidROIAlign) that is differentiable w.r.t. the feature maps.
//
// tfjs has no gradient for cropAndResize, so we sample ourselves: the sampling positions and bilinear weights
// are computed in JS from the boxes (boxes get no gradient: Matterport stops it too), then the 4 neighbours of
// every sample are blended. Two interchangeable implementations of that blend:
//   'gather' (GPU backends): ONE tf.gather per pyramid level fetches the neighbours of all its boxes from the
//            flattened map [B*H*W, C], a weighted sum blends them, one permutation gather restores the box order;
//            gather's gradient (a segment sum) carries the loss back into the maps.
//   'js'     (cpu, wasm: the maps live in CPU memory anyway): a tf.customGrad op whose forward and backward are
//            tight loops over Float32Arrays. On wasm, tf.gather costs ~100 ns per element, so the loops are an
//            order of magnitude faster there.
//
// Sampling is exactly tf.image.cropAndResize's (bilinear, extrapolation value 0), one sample per output cell:
//   box [y1, x1, y2, x2] normalized (pixel / [H_img, W_img]); on a map of height H,
//   y_i = y1*(H-1) + i * (y2-y1)*(H-1)/(P-1)   (P > 1; for P = 1 the centre 0.5*(y1+y2)*(H-1)),
//   a sample with y_i or x_j outside [0, H-1] / [0, W-1] is 0. Likewise for x.
// Level per box as Matterport: level = clip(4 + round(log2(sqrt(h*w) / (224 / sqrt(H_img*W_img)))), 2, 5)
// with h, w the normalized box height and width (round half to even, like tf.round).
import * as tf from '@tensorflow/tfjs';
import { loadRoiBlend } from './kernels/native/roi-blend.js';

/** Pyramid level 2..5 of each box. boxes: [N*4] normalized [y1, x1, y2, x2]; imageSize [H, W] in pixels. */
export function roiLevels(boxes: ArrayLike<number>, imageSize: readonly [number, number]): Int32Array {
  const n = boxes.length / 4;
  const levels = new Int32Array(n);
  const unit = 224 / Math.sqrt(imageSize[0] * imageSize[1]);
  for (let i = 0; i < n; i++) {
    const area = (boxes[i * 4 + 2]! - boxes[i * 4]!) * (boxes[i * 4 + 3]! - boxes[i * 4 + 1]!);
    // A degenerate box (area <= 0) has log2 = -inf in the original: the finest level.
    const level = area > 0 ? 4 + roundHalfEven(Math.log2(Math.sqrt(area) / unit)) : 2;
    levels[i] = Math.min(5, Math.max(2, level));
  }
  return levels;
}

export type RoiAlignImplementation = 'auto' | 'gather' | 'js';

/** 'auto': the JS loops where tensors live in CPU memory (cpu, wasm), tensor gathers elsewhere (GPU backends). */
function resolve(implementation: RoiAlignImplementation): 'gather' | 'js' {
  if (implementation !== 'auto') return implementation;
  return tf.getBackend() === 'cpu' || tf.getBackend() === 'wasm' ? 'js' : 'gather';
}

/**
 * featureMaps: [p2, p3, p4, p5], each [B, H_l, W_l, C]; boxesNormalized: [N, 4]; batchIndex: int32 [N] (image of
 * each box); imageSize: [H, W] of the network input in pixels (for the level rule).
 * Returns [N, poolSize, poolSize, C] in the order of the input boxes.
 * Boxes and batch index given as arrays (Float32Array [N * 4], Int32Array [N]) are not read back from a tensor:
 * with 'gather', nothing is read synchronously at all (the awaited read-back, webgpu's, needs that).
 */
export function roiAlign(
  featureMaps: readonly tf.Tensor4D[],
  boxesNormalized: tf.Tensor2D | Float32Array,
  batchIndex: tf.Tensor1D | Int32Array,
  poolSize: number,
  imageSize: readonly [number, number],
  implementation: RoiAlignImplementation = 'auto',
): tf.Tensor4D {
  if (featureMaps.length !== 4) throw new Error(`roiAlign: expected 4 feature maps [p2, p3, p4, p5], got ${featureMaps.length}`);
  const channels = featureMaps[0]!.shape[3];
  const boxes = boxesNormalized instanceof tf.Tensor ? boxesNormalized.dataSync() : boxesNormalized;
  const imageOfBox = batchIndex instanceof tf.Tensor ? batchIndex.dataSync() : batchIndex;
  const n = checkBoxes('roiAlign', shapeOf(boxesNormalized), shapeOf(batchIndex), featureMaps[0]!.shape[0], boxes, imageOfBox);
  if (n === 0) return tf.zeros([0, poolSize, poolSize, channels]);

  const levels = roiLevels(boxes, imageSize);
  const cells = poolSize * poolSize;
  const plans: { level: number; map: tf.Tensor4D; members: number[]; plan: SamplingPlan }[] = [];
  const rowOfBox = new Int32Array(n); // first pooled row of each box in the level-major concatenation
  let rows = 0;
  for (let level = 2; level <= 5; level++) {
    const members: number[] = [];
    for (let i = 0; i < n; i++) if (levels[i] === level) members.push(i);
    if (members.length === 0) continue;
    const map = featureMaps[level - 2]!;
    if (map.shape[3] !== channels) throw new Error(`roiAlign: p${level} has ${map.shape[3]} channels, p2 has ${channels}`);
    for (const [k, i] of members.entries()) rowOfBox[i] = rows + k * cells;
    rows += members.length * cells;
    plans.push({ level, map, members, plan: plan(boxes, imageOfBox, members, map.shape, [poolSize, poolSize]) });
  }
  if (resolve(implementation) === 'js') {
    const outputRows = plans.map(({ members }) => Int32Array.from(members, (i) => i * cells));
    return blendInJs(featureMaps, plans.map((p, k) => ({ level: p.level - 2, plan: p.plan, outputRows: outputRows[k]! })), n * cells, cells).reshape([
      n,
      poolSize,
      poolSize,
      channels,
    ]);
  }
  // Back to the input order with one permutation gather (skipped when the boxes already were in level order).
  const order = new Int32Array(n * cells);
  let identity = true;
  for (let i = 0; i < n; i++) {
    if (rowOfBox[i]! !== i * cells) identity = false;
    for (let c = 0; c < cells; c++) order[i * cells + c] = rowOfBox[i]! + c;
  }
  return tf.tidy(() => {
    const pooled = plans.map(({ map, plan }) => bilinearSamples(map, plan)); // per level [n_l * P * P, C]
    const levelMajor = pooled.length === 1 ? pooled[0]! : tf.concat(pooled, 0); // [N * P * P, C]
    const ordered = identity ? levelMajor : tf.gather(levelMajor, tf.tensor1d(order, 'int32'));
    return ordered.reshape([n, poolSize, poolSize, channels]);
  });
}

/**
 * tf.image.cropAndResize (bilinear, extrapolation 0) with a gradient w.r.t. `image`.
 * image [B, H, W, C], boxes [N, 4] normalized, boxIndex int32 [N], cropSize [h, w] -> [N, h, w, C].
 */
export function cropAndResizeDifferentiable(
  image: tf.Tensor4D,
  boxes: tf.Tensor2D,
  boxIndex: tf.Tensor1D,
  cropSize: readonly [number, number],
  implementation: RoiAlignImplementation = 'auto',
): tf.Tensor4D {
  const boxValues = boxes.dataSync();
  const imageOfBox = boxIndex.dataSync();
  const n = checkBoxes('cropAndResizeDifferentiable', boxes.shape, boxIndex.shape, image.shape[0], boxValues, imageOfBox);
  const channels = image.shape[3];
  if (n === 0) return tf.zeros([0, cropSize[0], cropSize[1], channels]);
  const all = Array.from({ length: n }, (_, i) => i);
  const samples = plan(boxValues, imageOfBox, all, image.shape, cropSize);
  const cells = cropSize[0] * cropSize[1];
  const pooled =
    resolve(implementation) === 'js'
      ? blendInJs([image], [{ level: 0, plan: samples, outputRows: Int32Array.from(all, (i) => i * cells) }], n * cells, cells)
      : bilinearSamples(image, samples);
  return pooled.reshape([n, cropSize[0], cropSize[1], channels]);
}

interface JsPart {
  /** Index into the maps. */
  level: number;
  plan: SamplingPlan;
  /** First output row of each box of the plan. */
  outputRows: Int32Array;
}

/**
 * The blend as one custom op over all maps: out[row, c] = sum over 4 neighbours of weight * map[index, c].
 * maps: each [B, H, W, C]; returns [rows, C]. The gradient scatters dy back with the same weights.
 */
function blendInJs(maps: readonly tf.Tensor4D[], parts: JsPart[], rows: number, cells: number): tf.Tensor2D {
  const channels = maps[0]!.shape[3];
  const op = tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const values = parts.map(({ level }) => (inputs[level] as tf.Tensor).dataSync() as Float32Array);
    const out = new Float32Array(rows * channels);
    const native = loadRoiBlend(); // the same loops in C (kernels/native/roi-blend.c), where it builds
    parts.forEach(({ plan: { indices, weights }, outputRows }, k) => {
      const map = values[k]!;
      if (native) return native.forward(map, indices, weights, outputRows, cells, channels, out);
      visitSamples(indices, weights, outputRows, cells, (source, weight, target) => {
        const from = source * channels;
        const to = target * channels;
        for (let c = 0; c < channels; c++) out[to + c]! += weight * map[from + c]!;
      });
    });
    const gradFunc = (dy: tf.Tensor) => {
      const dyValues = dy.dataSync() as Float32Array;
      const grads = maps.map((m) => (parts.some((p) => maps[p.level] === m) ? new Float32Array(m.size) : null));
      for (const { level, plan: { indices, weights }, outputRows } of parts) {
        const grad = grads[level]!;
        if (native) {
          native.backward(dyValues, indices, weights, outputRows, cells, channels, grad);
          continue;
        }
        visitSamples(indices, weights, outputRows, cells, (source, weight, target) => {
          const from = target * channels;
          const to = source * channels;
          for (let c = 0; c < channels; c++) grad[to + c]! += weight * dyValues[from + c]!;
        });
      }
      return maps.map((m, level) => (grads[level] ? tf.tensor(grads[level]!, m.shape) : tf.zerosLike(m)));
    };
    return { value: tf.tensor2d(out, [rows, channels]), gradFunc };
  });
  return op(...maps) as tf.Tensor2D;
}

/** Calls visit(source pixel, weight, output row) for every neighbour with a non-zero weight. */
function visitSamples(
  indices: Int32Array,
  weights: Float32Array,
  outputRows: Int32Array,
  cells: number,
  visit: (source: number, weight: number, target: number) => void,
): void {
  for (let m = 0; m < outputRows.length; m++) {
    for (let cell = 0; cell < cells; cell++) {
      const target = outputRows[m]! + cell;
      const k = (m * cells + cell) * 4;
      for (let q = 0; q < 4; q++) {
        const weight = weights[k + q]!;
        if (weight !== 0) visit(indices[k + q]!, weight, target);
      }
    }
  }
}

interface SamplingPlan {
  /** [S*4] flat pixel index (b*H + y)*W + x of the top-left, top-right, bottom-left, bottom-right neighbours. */
  indices: Int32Array;
  /** [S*4] their bilinear weights (all 0 for a sample outside the map: the extrapolation value). */
  weights: Float32Array;
}

// Elements per gathered tensor at most: the corners of a chunk of samples, [chunk * 4, C], stay under 64 MiB.
// WebGPU devices may refuse to bind a larger buffer (the default maxStorageBufferBindingSize is 128 MiB, and
// lavapipe has exactly that); the recipe's mask head at 512 px samples ~50k points x 4 corners x 256 channels.
export const gatherLimits = { maxElements: 2 ** 24 }; // a setting, not a constant: tests use small chunks

/** map [B, H, W, C] and a plan of S samples -> [S, C], in chunks of samples (same arithmetic per sample). */
function bilinearSamples(map: tf.Tensor4D, { indices, weights }: SamplingPlan): tf.Tensor2D {
  const [b, h, w, c] = map.shape;
  const samples = indices.length / 4;
  const chunk = Math.max(1, Math.floor(gatherLimits.maxElements / (4 * c)));
  return tf.tidy(() => {
    const flat = map.reshape([b * h * w, c]);
    const parts: tf.Tensor2D[] = [];
    for (let start = 0; start < samples || parts.length === 0; start += chunk) {
      const end = Math.min(samples, start + chunk);
      const corners = tf.gather(flat, tf.tensor1d(indices.subarray(4 * start, 4 * end), 'int32')); // [n*4, C]
      const blend = tf.tensor3d(weights.subarray(4 * start, 4 * end), [end - start, 4, 1]);
      parts.push(corners.reshape([end - start, 4, c]).mul(blend).sum(1) as tf.Tensor2D); // [n, C]
    }
    return parts.length === 1 ? parts[0]! : tf.concat(parts, 0);
  });
}

/** Sampling positions of cropAndResize for the given boxes, mirroring its arithmetic (tfjs-backend-cpu). */
function plan(
  boxes: ArrayLike<number>,
  imageOfBox: ArrayLike<number>,
  members: readonly number[],
  [, height, width]: readonly number[],
  [cropHeight, cropWidth]: readonly [number, number],
): SamplingPlan {
  const h = height!;
  const w = width!;
  const perBox = cropHeight * cropWidth * 4;
  const indices = new Int32Array(members.length * perBox);
  const weights = new Float32Array(members.length * perBox);
  const xs = new Float64Array(cropWidth);
  members.forEach((box, m) => {
    const y1 = boxes[box * 4]!;
    const x1 = boxes[box * 4 + 1]!;
    const y2 = boxes[box * 4 + 2]!;
    const x2 = boxes[box * 4 + 3]!;
    const base = imageOfBox[box]! * h * w;
    const heightScale = cropHeight > 1 ? ((y2 - y1) * (h - 1)) / (cropHeight - 1) : 0;
    const widthScale = cropWidth > 1 ? ((x2 - x1) * (w - 1)) / (cropWidth - 1) : 0;
    for (let x = 0; x < cropWidth; x++) {
      xs[x] = cropWidth > 1 ? x1 * (w - 1) + x * widthScale : 0.5 * (x1 + x2) * (w - 1);
    }
    for (let y = 0; y < cropHeight; y++) {
      const yIn = cropHeight > 1 ? y1 * (h - 1) + y * heightScale : 0.5 * (y1 + y2) * (h - 1);
      if (yIn < 0 || yIn > h - 1) continue; // whole row extrapolated: weights stay 0, indices 0
      const top = Math.floor(yIn);
      const bottom = Math.ceil(yIn);
      const yLerp = yIn - top;
      for (let x = 0; x < cropWidth; x++) {
        const xIn = xs[x]!;
        if (xIn < 0 || xIn > w - 1) continue;
        const left = Math.floor(xIn);
        const right = Math.ceil(xIn);
        const xLerp = xIn - left;
        const k = m * perBox + (y * cropWidth + x) * 4;
        indices[k] = base + top * w + left;
        indices[k + 1] = base + top * w + right;
        indices[k + 2] = base + bottom * w + left;
        indices[k + 3] = base + bottom * w + right;
        weights[k] = (1 - yLerp) * (1 - xLerp);
        weights[k + 1] = (1 - yLerp) * xLerp;
        weights[k + 2] = yLerp * (1 - xLerp);
        weights[k + 3] = yLerp * xLerp;
      }
    }
  });
  return { indices, weights };
}

/** A tensor's shape; an array of boxes [N * 4] is [N, 4], a batch index array [N] is [N]. */
function shapeOf(values: tf.Tensor | Float32Array | Int32Array): readonly number[] {
  if (values instanceof tf.Tensor) return values.shape;
  return values instanceof Float32Array ? [values.length / 4, 4] : [values.length];
}

function checkBoxes(
  caller: string,
  boxesShape: readonly number[],
  batchIndexShape: readonly number[],
  batch: number,
  boxValues: ArrayLike<number>,
  imageOfBox: ArrayLike<number>,
): number {
  if (boxesShape.length !== 2 || boxesShape[1] !== 4 || !Number.isInteger(boxesShape[0])) {
    throw new Error(`${caller}: boxes must be [N, 4], got [${boxesShape}]`);
  }
  const n = boxesShape[0]!;
  if (batchIndexShape.length !== 1 || batchIndexShape[0] !== n) {
    throw new Error(`${caller}: batch index must be [${n}] (one per box), got [${batchIndexShape}]`);
  }
  for (let i = 0; i < n; i++) {
    const b = imageOfBox[i]!;
    if (!Number.isInteger(b) || b < 0 || b >= batch) {
      throw new Error(`${caller}: box ${i} has batch index ${b}, outside 0..${batch - 1}`);
    }
    for (let k = 0; k < 4; k++) {
      if (!Number.isFinite(boxValues[i * 4 + k]!)) throw new Error(`${caller}: box ${i} has a non-finite coordinate`);
    }
  }
  return n;
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
