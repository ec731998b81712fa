// A tiny training sample for model tests: dark background, 12 x 12 bright squares as nuclei.
import type { Image8, LabelMap } from '../../stages/imaging/dataset.js';

/** A width x height image with square nuclei at the given top-left corners (side 12), and its label map. */
export function squares(width: number, height: number, corners: Array<[number, number]>): { image: Image8; labels: LabelMap } {
  const data = new Uint8Array(width * height * 3).fill(10);
  const labels = new Uint16Array(width * height);
  corners.forEach(([y0, x0], k) => {
    for (let y = y0; y < y0 + 12; y++) for (let x = x0; x < x0 + 12; x++) {
      labels[y * width + x] = k + 1;
      data.fill(230, (y * width + x) * 3, (y * width + x) * 3 + 3);
    }
  });
  return { image: { width, height, channels: 3, data }, labels: { width, height, data: labels, count: corners.length } };
}
