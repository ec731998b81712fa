// ROIAlign's bilinear blend in C (roi-blend.c) for the 'js' implementation of stages/model/roi-align.ts (cpu and
// wasm backends): the same arithmetic as its JavaScript loops, in the same order, with the same float32 results. Optional like the OpenBLAS
// kernels: compiled on first use (runner/native-addon.ts); without a C compiler or Node's headers, or with
// RUNNER_NATIVE_KERNELS=off, roi-align.ts keeps its loops.
import { fileURLToPath } from 'node:url';
import { loadNativeAddon, NativeAddonUnavailableError } from '../../../../runner/native-addon.js';
import { nativeKernelsDisabled } from './blas-kernels.js';

/** forward: out[outputRows[m] + cell] += w * map[index]; backward: grad[index] += w * dy[outputRows[m] + cell]; rows of `channels`. */
export interface RoiBlend {
  forward(map: Float32Array, indices: Int32Array, weights: Float32Array, outputRows: Int32Array, cells: number, channels: number, out: Float32Array): void;
  backward(dy: Float32Array, indices: Int32Array, weights: Float32Array, outputRows: Int32Array, cells: number, channels: number, grad: Float32Array): void;
}

const SOURCE_FILE = fileURLToPath(new URL('./roi-blend.c', import.meta.url));

let cached: RoiBlend | null | undefined;

/** The addon, or null where it cannot be built or is turned off (the caller then runs its own loops). */
export function loadRoiBlend(): RoiBlend | null {
  if (nativeKernelsDisabled()) return null;
  if (cached !== undefined) return cached;
  try {
    cached = loadNativeAddon<RoiBlend>({ name: 'roi-blend', sourceFile: SOURCE_FILE });
  } catch (error) {
    if (!(error instanceof NativeAddonUnavailableError)) throw error;
    cached = null;
  }
  return cached;
}
