// Anchor boxes of the feature pyramid, following Matterport's generate_pyramid_anchors:
//   - one square scale per level (p2..p6), `ratios` = width / height: h = scale / sqrt(r), w = scale * sqrt(r);
//   - centres at (y, x) = (i, j) * featureStride for i, j = 0, anchorStride, 2*anchorStride, ... < the level's
//     side. Matterport puts the centre on the cell's top-left multiple (not +stride/2), so anchors of the top row
//     and left column stick out of the image by half their size; we keep that so the original's trained behaviour
//     (and its anchor/target statistics) carries over;
//   - order: level-major, then row y, column x, then ratio — the rpn-head's outputs use the same order.
// Boxes are [y1, x1, y2, x2] in pixels of the S x S network input.
import type { MaskRcnnConfig } from './config.js';

export interface AnchorSpec {
  imageSize: number;
  scales: number[];
  ratios: number[];
  featureStrides: number[];
  anchorStride: number;
}

export function anchorSpec(config: MaskRcnnConfig): AnchorSpec {
  return {
    imageSize: config.image.size,
    scales: config.rpn.anchorScales,
    ratios: config.rpn.anchorRatios,
    featureStrides: config.rpn.featureStrides,
    anchorStride: config.rpn.anchorStride,
  };
}

/** Feature-map side of each pyramid level: ceil(S / stride) (Matterport's BACKBONE_SHAPES). */
export function featureShapes(spec: AnchorSpec): number[] {
  return spec.featureStrides.map((stride) => Math.ceil(spec.imageSize / stride));
}

/** Number of anchors of the whole pyramid (65,472 for the recipe at 512). */
export function anchorCount(spec: AnchorSpec): number {
  return featureShapes(spec).reduce((sum, side) => {
    const cells = Math.ceil(side / spec.anchorStride);
    return sum + cells * cells * spec.ratios.length;
  }, 0);
}

/** All anchors: Float32Array [A * 4] of [y1, x1, y2, x2] pixels, in the order described above. */
export function generatePyramidAnchors(spec: AnchorSpec): Float32Array {
  if (spec.scales.length !== spec.featureStrides.length) {
    throw new Error(`anchors: ${spec.scales.length} scales for ${spec.featureStrides.length} pyramid levels`);
  }
  const out = new Float32Array(anchorCount(spec) * 4);
  let k = 0;
  const shapes = featureShapes(spec);
  for (let level = 0; level < shapes.length; level++) {
    const side = shapes[level]!;
    const stride = spec.featureStrides[level]!;
    const scale = spec.scales[level]!;
    const sizes = spec.ratios.map((ratio) => ({ h: scale / Math.sqrt(ratio), w: scale * Math.sqrt(ratio) }));
    for (let y = 0; y < side; y += spec.anchorStride) {
      const cy = y * stride;
      for (let x = 0; x < side; x += spec.anchorStride) {
        const cx = x * stride;
        for (const { h, w } of sizes) {
          out[k++] = cy - 0.5 * h;
          out[k++] = cx - 0.5 * w;
          out[k++] = cy + 0.5 * h;
          out[k++] = cx + 0.5 * w;
        }
      }
    }
  }
  return out;
}

const cache = new Map<string, Float32Array>();

/** generatePyramidAnchors, computed once per spec (the result must not be modified). */
export function pyramidAnchors(spec: AnchorSpec): Float32Array {
  const key = JSON.stringify(spec);
  let anchors = cache.get(key);
  if (!anchors) {
    anchors = generatePyramidAnchors(spec);
    cache.set(key, anchors);
  }
  return anchors;
}
