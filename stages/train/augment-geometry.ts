// The geometric operations behind the training augmentations (augment.ts), on an image and its label map
// together. Each is a plain typed-array loop: they run once per training sample on a 2-core CPU, on images
// of at most ~1400x1000, where a loop over pixels is a few milliseconds, while sharp/OpenCV.js would add an
// async round trip or a copy into a wasm heap per call (and neither has nearest-neighbour label warping
// with reflected borders in one call).
import type { Image8, LabelMap } from '../imaging/dataset.js';

export interface Pair {
  image: Image8;
  labels: LabelMap;
}

/** A window [y1, x1, y2, x2] (ends exclusive) in pixels. */
export type Window = [number, number, number, number];

/**
 * Index i reflected into [0, n) without repeating the edge pixel (… 2 1 | 0 1 2 … n-1 | n-2 …), like
 * OpenCV's BORDER_REFLECT_101 and numpy's mode 'reflect'. n = 1 maps everything to 0.
 */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

/**
 * Rotates by `degrees` (counter-clockwise as displayed) and scales by `scale` about the image centre; the
 * output has the input's size. Image: bilinear; labels: nearest; outside the input: reflected borders.
 * Reflected copies keep their label here: relabel afterwards to split them.
 */
export function rotateScale({ image, labels }: Pair, degrees: number, scale: number): Pair {
  const { width, height, channels } = image;
  const theta = (degrees * Math.PI) / 180;
  // Inverse map: source = centre + R(-theta) (target - centre) / scale. With y pointing down, a
  // counter-clockwise display rotation by theta maps source (u, v) to target via [cos, sin; -sin, cos].
  const cos = Math.cos(theta) / scale;
  const sin = Math.sin(theta) / scale;
  const cx = (width - 1) / 2;
  const cy = (height - 1) / 2;
  const data = new Uint8Array(width * height * channels); // [height * width * channels]
  const labelData = new Uint16Array(width * height); // [height * width]
  for (let y = 0; y < height; y++) {
    const dy = y - cy;
    for (let x = 0; x < width; x++) {
      const dx = x - cx;
      const u = cx + cos * dx - sin * dy;
      const v = cy + sin * dx + cos * dy;
      const p = y * width + x;
      labelData[p] = labels.data[reflectIndex(Math.round(v), height) * width + reflectIndex(Math.round(u), width)]!;
      const u0 = Math.floor(u);
      const v0 = Math.floor(v);
      const fu = u - u0;
      const fv = v - v0;
      const xa = reflectIndex(u0, width);
      const xb = reflectIndex(u0 + 1, width);
      const ya = reflectIndex(v0, height) * width;
      const yb = reflectIndex(v0 + 1, height) * width;
      for (let c = 0; c < channels; c++) {
        const top = image.data[(ya + xa) * channels + c]! * (1 - fu) + image.data[(ya + xb) * channels + c]! * fu;
        const bottom = image.data[(yb + xa) * channels + c]! * (1 - fu) + image.data[(yb + xb) * channels + c]! * fu;
        data[p * channels + c] = Math.round(top * (1 - fv) + bottom * fv);
      }
    }
  }
  return { image: { width, height, channels, data }, labels: { width, height, data: labelData, count: labels.count } };
}

/** The w x h rectangle at (x, y) of both. */
export function cropPair({ image, labels }: Pair, x: number, y: number, w: number, h: number): Pair {
  const { channels } = image;
  const data = new Uint8Array(w * h * channels);
  const labelData = new Uint16Array(w * h);
  for (let row = 0; row < h; row++) {
    const source = (y + row) * image.width + x;
    data.set(image.data.subarray(source * channels, (source + w) * channels), row * w * channels);
    labelData.set(labels.data.subarray(source, source + w), row * w);
  }
  return { image: { width: w, height: h, channels, data }, labels: { width: w, height: h, data: labelData, count: labels.count } };
}

/**
 * Matterport's resize for a square input of side `size`: scale so the short side is `size`, unless the long
 * side would then exceed `size` (it does unless the image is square), in which case the long side becomes
 * `size`; then zero-pad, centred. Returns the window the image occupies and the scale, to map predictions back.
 */
export function resizePadGeometry(width: number, height: number, size: number): { scale: number; resizedWidth: number; resizedHeight: number; window: Window } {
  let scale = size / Math.min(width, height);
  if (Math.round(Math.max(width, height) * scale) > size) scale = size / Math.max(width, height);
  const resizedWidth = Math.min(size, Math.round(width * scale));
  const resizedHeight = Math.min(size, Math.round(height * scale));
  const top = Math.floor((size - resizedHeight) / 2);
  const left = Math.floor((size - resizedWidth) / 2);
  return { scale, resizedWidth, resizedHeight, window: [top, left, top + resizedHeight, left + resizedWidth] };
}

/** Resizes (image bilinear, labels nearest; pixel centres aligned) and zero-pads to size x size. */
export function resizePad({ image, labels }: Pair, size: number): Pair & { scale: number; window: Window } {
  const { scale, resizedWidth, resizedHeight, window } = resizePadGeometry(image.width, image.height, size);
  const { channels } = image;
  const [top, left] = window;
  const data = new Uint8Array(size * size * channels);
  const labelData = new Uint16Array(size * size);
  const sx = image.width / resizedWidth;
  const sy = image.height / resizedHeight;
  // Per output column: the two source columns, the weight of the second, and the nearest column.
  const u0s = new Int32Array(resizedWidth);
  const u1s = new Int32Array(resizedWidth);
  const fus = new Float64Array(resizedWidth);
  const nearestColumn = new Int32Array(resizedWidth);
  for (let x = 0; x < resizedWidth; x++) {
    const u = Math.min(image.width - 1, Math.max(0, (x + 0.5) * sx - 0.5));
    u0s[x] = Math.floor(u);
    u1s[x] = Math.min(image.width - 1, u0s[x]! + 1);
    fus[x] = u - u0s[x]!;
    nearestColumn[x] = Math.min(image.width - 1, Math.floor((x + 0.5) * sx));
  }
  const source = image.data;
  for (let y = 0; y < resizedHeight; y++) {
    const v = Math.min(image.height - 1, Math.max(0, (y + 0.5) * sy - 0.5));
    const v0 = Math.floor(v);
    const fv = v - v0;
    const row0 = v0 * image.width;
    const row1 = Math.min(image.height - 1, v0 + 1) * image.width;
    const nearestRow = Math.min(image.height - 1, Math.floor((y + 0.5) * sy)) * image.width;
    for (let x = 0; x < resizedWidth; x++) {
      const p = (top + y) * size + left + x;
      labelData[p] = labels.data[nearestRow + nearestColumn[x]!]!;
      const fu = fus[x]!;
      const a = (row0 + u0s[x]!) * channels;
      const b = (row0 + u1s[x]!) * channels;
      const c0 = (row1 + u0s[x]!) * channels;
      const d = (row1 + u1s[x]!) * channels;
      for (let c = 0; c < channels; c++) {
        const upper = source[a + c]! + (source[b + c]! - source[a + c]!) * fu;
        const lower = source[c0 + c]! + (source[d + c]! - source[c0 + c]!) * fu;
        data[p * channels + c] = Math.round(upper + (lower - upper) * fv);
      }
    }
  }
  return { image: { width: size, height: size, channels, data }, labels: { width: size, height: size, data: labelData, count: labels.count }, scale, window };
}

/** Mirrors left-right. */
export function flipLeftRight({ image, labels }: Pair): Pair {
  return remap(image, labels, image.width, image.height, [image.width - 1, -1, 0], [0, 0, 1]);
}

/** Mirrors top-bottom. */
export function flipUpDown({ image, labels }: Pair): Pair {
  return remap(image, labels, image.width, image.height, [0, 1, 0], [image.height - 1, 0, -1]);
}

/**
 * Rotates by 90 degrees: direction 1 = counter-clockwise (numpy's rot90 k=1), -1 = clockwise. A W x H input
 * becomes H x W.
 */
export function rotate90({ image, labels }: Pair, direction: 1 | -1): Pair {
  const { width, height } = image;
  // Target (x', y') takes source: CCW: (W-1-y', x'); CW: (y', H-1-x').
  return direction === 1
    ? remap(image, labels, height, width, [width - 1, 0, -1], [0, 1, 0])
    : remap(image, labels, height, width, [0, 0, 1], [height - 1, -1, 0]);
}

/** The window after flipLeftRight / flipUpDown / rotate90 of a width x height image. */
export function flipWindowLeftRight(w: Window, width: number): Window {
  return [w[0], width - w[3], w[2], width - w[1]];
}
export function flipWindowUpDown(w: Window, height: number): Window {
  return [height - w[2], w[1], height - w[0], w[3]];
}
export function rotateWindow90(w: Window, width: number, height: number, direction: 1 | -1): Window {
  return direction === 1 ? [width - w[3], w[0], width - w[1], w[2]] : [w[1], height - w[2], w[3], height - w[0]];
}

/**
 * Builds a newWidth x newHeight pair where target (x, y) takes the input's pixel
 * (sx[0] + sx[1] x + sx[2] y, sy[0] + sy[1] x + sy[2] y): flips and quarter turns are such integer maps.
 */
function remap(image: Image8, labels: LabelMap, newWidth: number, newHeight: number, sx: [number, number, number], sy: [number, number, number]): Pair {
  const { channels } = image;
  const data = new Uint8Array(newWidth * newHeight * channels);
  const labelData = new Uint16Array(newWidth * newHeight);
  // Source index q = q0 + qx * x + qy * y, stepping by qx along a row.
  const q0 = sy[0] * image.width + sx[0];
  const qx = sy[1] * image.width + sx[1];
  const qy = sy[2] * image.width + sx[2];
  for (let y = 0, p = 0; y < newHeight; y++) {
    for (let x = 0, q = q0 + qy * y; x < newWidth; x++, p++, q += qx) {
      labelData[p] = labels.data[q]!;
      for (let c = 0; c < channels; c++) data[p * channels + c] = image.data[q * channels + c]!;
    }
  }
  return {
    image: { width: newWidth, height: newHeight, channels, data },
    labels: { width: newWidth, height: newHeight, data: labelData, count: labels.count },
  };
}
