// The OpenBLAS addon (blas-kernels.c): convolutions and matrix products for the wasm backend on the system's
// OpenBLAS, which runs AVX2/AVX-512 sgemm where wasm has 128-bit SIMD (the cpu profile's train step spends ~70%
// of its time in convolutions and products). Optional: compiled on first use (runner/native-addon.ts); without a C
// compiler with OpenMP (gcc's -fopenmp), Node's headers or OpenBLAS, or with RUNNER_NATIVE_KERNELS=off, the wasm
// backend keeps its own kernels.
import { fileURLToPath } from 'node:url';
import { loadNativeAddon, NativeAddonUnavailableError } from '../../../../runner/native-addon.js';

/** The addon's functions: operands are element offsets into `heap`, a Float32Array over the whole wasm memory. */
export interface BlasKernels {
  /** The 15 numbers of blas-kernels.c's Geometry (wasm-blas-kernels.ts: geometry()), then x, w, bias (-1 = none), relu (0/1), y. */
  conv2d(heap: Float32Array, ...geometryThenOffsets: number[]): void;
  /** Geometry, then dy, w, dx. */
  conv2dBackpropInput(heap: Float32Array, ...geometryThenOffsets: number[]): void;
  /** Geometry, then x, dy, dw. */
  conv2dBackpropFilter(heap: Float32Array, ...geometryThenOffsets: number[]): void;
  /** batch, m, n, k, transposeA, transposeB, strideA, strideB, a, b, bias (-1 = none), relu, c */
  matMul(heap: Float32Array, ...args: number[]): void;
  /** The threads the convolutions and products are split over (each sgemm runs on one). */
  setThreads(threads: number): void;
  /** That thread count now. */
  threads(): number;
  /** OpenBLAS's build configuration and the core it picked ("OpenBLAS 0.3.21 ... (SkylakeX)"). */
  version(): string;
}

export type BlasKernelsLoad =
  | { kind: 'loaded'; kernels: BlasKernels; version: string }
  | { kind: 'off'; reason: string }
  | { kind: 'unavailable'; reason: string };

const SOURCE_FILE = fileURLToPath(new URL('./blas-kernels.c', import.meta.url));

/** RUNNER_NATIVE_KERNELS=off (or 0, false, no) turns the addon off: to measure the plain wasm kernels, or to test them. */
export function nativeKernelsDisabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env['RUNNER_NATIVE_KERNELS']?.trim().toLowerCase();
  return value === 'off' || value === '0' || value === 'false' || value === 'no';
}

/** "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ... (SkylakeX)" -> "OpenBLAS 0.3.21, SkylakeX". */
function shortVersion(full: string): string {
  const name = /^OpenBLAS\s+\S+/.exec(full)?.[0] ?? 'OpenBLAS';
  const core = /\(([^()]+)\)\s*$/.exec(full)?.[1];
  return core ? `${name}, ${core}` : name;
}

let cached: BlasKernelsLoad | undefined;

/** Builds (once per source) and loads the addon; says why not when it cannot. */
export function loadBlasKernels(): BlasKernelsLoad {
  if (nativeKernelsDisabled()) return { kind: 'off', reason: 'RUNNER_NATIVE_KERNELS=off' };
  if (cached) return cached;
  // The addon's OpenMP threads (and those of Debian's default OpenBLAS, the OpenMP build) spin between parallel
  // regions on the cores the rest of the step needs (cpu profile step, 2 threads: 2.7 s spinning, 1.4 s passive).
  // Read by libgomp when the addon loads it, so set before; the user's own setting wins.
  process.env['OMP_WAIT_POLICY'] ??= 'PASSIVE';
  try {
    const kernels = loadNativeAddon<BlasKernels>({ name: 'blas-kernels', sourceFile: SOURCE_FILE, linkFlags: ['-O3', '-fopenmp', '-lopenblas'] });
    cached = { kind: 'loaded', kernels, version: shortVersion(kernels.version()) };
  } catch (error) {
    if (!(error instanceof NativeAddonUnavailableError)) throw error;
    const hint = /cblas\.h|-lopenblas|openblas/i.test(error.message) ? ' (install OpenBLAS: Debian libopenblas-dev)' : '';
    cached = { kind: 'unavailable', reason: `${error.message}${hint}` };
  }
  return cached;
}
