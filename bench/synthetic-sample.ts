// A synthetic image with nuclei-like discs and their label map, so the RPN and heads of a benchmarked model have
// real targets. Shared by the CPU model benchmark and the GPU scripts (bench/device/).
import type { Image8, LabelMap } from '../stages/imaging/dataset.js';
import { seededRng } from '../stages/model/sampler.js';

/**
 * size x size, `count` discs of radius 4-14 at seeded places (later discs never overwrite earlier ones), each
 * of brightness 200, or with `shades` of a seeded brightness 120-249 (drawn after its place).
 */
export function syntheticSample(size: number, count: number, seed = 'bench', options: { shades?: boolean } = {}): { image: Image8; labels: LabelMap } {
  const rng = seededRng(seed);
  const data = new Uint8Array(size * size * 3).fill(15);
  const labels = new Uint16Array(size * size);
  for (let k = 1; k <= count; k++) {
    const r = 4 + rng() * 10;
    const cy = r + rng() * (size - 2 * r);
    const cx = r + rng() * (size - 2 * r);
    const shade = options.shades ? 120 + Math.floor(rng() * 130) : 200;
    for (let y = Math.floor(cy - r); y <= cy + r; y++) for (let x = Math.floor(cx - r); x <= cx + r; x++) {
      if ((y - cy) ** 2 + (x - cx) ** 2 > r * r || labels[y * size + x]) continue;
      labels[y * size + x] = k;
      data.fill(shade, (y * size + x) * 3, (y * size + x) * 3 + 3);
    }
  }
  return { image: { width: size, height: size, channels: 3, data }, labels: { width: size, height: size, data: labels, count } };
}
