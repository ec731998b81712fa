// The tfjs backend ladder: picks the fastest backend that works on this machine, and says why the faster
// ones were skipped.
//
//   auto = tfjs-node-gpu > tfjs-node > webgpu > wasm > cpu
//
// tfjs-node(-gpu) and `webgpu` (Dawn for Node) are optionalDependencies: imported dynamically, a missing or
// broken one is a skip reason, not a crash. On wasm and webgpu we register the training kernels tfjs lacks
// (stages/model/kernels/), so a conv net can be trained there at all. On wasm, convolutions and matrix products
// run on the system OpenBLAS when its addon builds (kernels/native/): "wasm + OpenBLAS kernels".
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { StageError } from '../stage-error.js';
import { registerReductionGradients } from './kernels/reduction-gradients.js';
import { registerReluGradient } from './kernels/relu-gradient.js';
import { registerResizeGradients } from './kernels/resize-gradients.js';
import { registerAmsgradUpdate } from './kernels/native/amsgrad-update.js';
import { registerBatchNormFrozen } from './kernels/native/batch-norm-frozen.js';
import { loadBlasKernels } from './kernels/native/blas-kernels.js';
import { registerWasmTrainingKernels } from './kernels/wasm/register.js';
import { enableWasmThreadsInNode } from './kernels/wasm/wasm-threads.js';
import { configureWebgpuBackend, registerWebgpuTrainingKernels } from './kernels/webgpu/register.js';

export const backendPreferences = ['auto', 'tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendPreference = (typeof backendPreferences)[number];
export type BackendName = Exclude<BackendPreference, 'auto'>;

export interface BackendOptions {
  /** wasm only: XNNPACK threads ('auto' = the machine's cores, max 8; 1 = the stock single-threaded build). */
  threads?: number | 'auto';
  /** webgpu: accept a software adapter (lavapipe/SwiftShader) in 'auto' too; for tests of the webgpu kernels. */
  allowSoftwareGpu?: boolean;
  /**
   * wasm only: run convolutions and matrix products on the system OpenBLAS when its addon builds, and AMSGrad's
   * update in one C pass (kernels/native/; default true; RUNNER_NATIVE_KERNELS=off also turns them off).
   */
  nativeKernels?: boolean;
}

export interface SelectedBackend {
  name: BackendName;
  /** tf.getBackend() after selection: 'tensorflow' for tfjs-node(-gpu), else the same as `name`. */
  tfjsName: string;
  /** One line per better backend that was skipped: "tfjs-node: not installed". */
  reasons: string[];
  /**
   * wasm: the threads it computes with: XNNPACK's pool as it actually runs, or with nativeKernels the addon's (wasm
   * then runs its single-threaded build, unless it was started with more threads earlier in the process).
   */
  threads?: number;
  /** wasm: the native library its convolutions and products run on ("OpenBLAS 0.3.21, SkylakeX"), if any. */
  nativeKernels?: string;
}

/** What a backend reports once running: wasm's threads and native kernels. */
interface BackendDetails {
  threads?: number;
  nativeKernels?: string;
  /** Said in the log line: why the native kernels are not in use. */
  nativeKernelsSkipped?: string;
}

const require = createRequire(import.meta.url);

/** A backend that could not be used, and the one-line reason. */
class Unavailable extends Error {}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0]?.trim() || 'unknown error';
}

function isNotInstalled(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

/** tf.setBackend swallows the init error into console.warn; catch that text to report it. */
async function setBackendOrExplain(name: string): Promise<void> {
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => void warnings.push(args.map(String).join(' '));
  try {
    if (await tf.setBackend(name)) return;
  } finally {
    console.warn = warn;
  }
  const cause = warnings.find((w) => !w.startsWith('Initialization of backend')) ?? warnings[0] ?? 'initialisation failed';
  throw new Unavailable(`failed to initialise: ${firstLine(cause)}`);
}

async function useTfjsNode(packageName: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node'): Promise<void> {
  try {
    await import(packageName);
  } catch (error) {
    throw new Unavailable(isNotInstalled(error) ? `not installed (${packageName})` : `failed to load: ${firstLine(error)}`);
  }
  if (!tf.findBackend('tensorflow')) throw new Unavailable(`${packageName} loaded but registered no 'tensorflow' backend`);
  await setBackendOrExplain('tensorflow');
}

// Software adapters run WebGPU on the CPU, far slower than wasm: fine to test kernels, wrong for 'auto'.
const softwareAdapter = /llvmpipe|lavapipe|swiftshader|software/i;

async function useWebgpu(explicit: boolean, options: BackendOptions): Promise<void> {
  const g = globalThis as { navigator?: { gpu?: GpuLike } };
  if (!g.navigator?.gpu) {
    let dawn: { create: (flags: string[]) => GpuLike; globals: object };
    try {
      // DAWN_NODE: a bare dawn.node binary (the lent GPU machine carries one); else the npm package.
      dawn = process.env['DAWN_NODE'] ? require(process.env['DAWN_NODE']) : await import('webgpu');
    } catch (error) {
      throw new Unavailable(isNotInstalled(error) ? 'not installed (webgpu, Dawn for Node)' : `failed to load: ${firstLine(error)}`);
    }
    Object.assign(globalThis, dawn.globals);
    // Node 21+ has a read-only navigator; define ours over it.
    Object.defineProperty(globalThis, 'navigator', { configurable: true, writable: true, value: { ...g.navigator, gpu: dawn.create([]) } });
  }
  const adapter = await g.navigator!.gpu!.requestAdapter();
  if (!adapter) throw new Unavailable('no GPU adapter (Dawn found no Vulkan/Metal/D3D device)');
  const description = [adapter.info?.vendor, adapter.info?.architecture, adapter.info?.description].filter(Boolean).join(' ');
  if (!explicit && !options.allowSoftwareGpu && (adapter.isFallbackAdapter || softwareAdapter.test(description))) {
    throw new Unavailable(`only a software adapter (${description || 'fallback'}): slower than wasm`);
  }
  // It registers itself only if navigator.gpu exists at import time, hence the dynamic import after the above.
  await import('@tensorflow/tfjs-backend-webgpu');
  registerWebgpuTrainingKernels();
  await setBackendOrExplain('webgpu');
  configureWebgpuBackend();
}

interface GpuAdapterLike {
  isFallbackAdapter?: boolean;
  info?: { vendor?: string; architecture?: string; description?: string };
}
interface GpuLike {
  requestAdapter(): Promise<GpuAdapterLike | null>;
}

/** Directory of the .wasm binaries, absolute so the backend loads from any cwd (TFJS_WASM_DIR: for bundles). */
export function wasmBinaryDirectory(): string {
  const override = process.env['TFJS_WASM_DIR'];
  if (override) return join(override, '/');
  return join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/');
}

async function useWasm(options: BackendOptions): Promise<BackendDetails> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const wanted = options.threads === undefined || options.threads === 'auto' ? availableParallelism() : options.threads;
  const threads = Math.max(1, Math.min(8, Math.floor(wanted)));
  const blas = options.nativeKernels === false ? { kind: 'off' as const, reason: 'nativeKernels: false' } : loadBlasKernels();
  if (!tf.findBackend('wasm')) {
    // Not yet initialised: paths and threads can still be chosen. With the OpenBLAS kernels the threads go to
    // the addon's parallel loops and wasm runs its single-threaded build: what is left on wasm is short elementwise kernels, which
    // its thread pool slows down (cpu profile step on 2 threads: 860-950 ms with XNNPACK's pool beside OpenBLAS's,
    // 770-910 ms with OpenBLAS's alone).
    const wasmThreads = blas.kind === 'loaded' ? 1 : threads;
    wasm.setWasmPaths(wasmBinaryDirectory());
    let restore: (() => void) | undefined;
    if (wasmThreads > 1) {
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
      restore = enableWasmThreadsInNode(wasmThreads);
    }
    wasm.setThreadsCount(wasmThreads);
    try {
      await setBackendOrExplain('wasm');
    } finally {
      restore?.();
    }
  } else {
    await setBackendOrExplain('wasm');
  }
  registerAmsgradUpdate(options.nativeKernels !== false); // the optimizer's update in one pass (train/amsgrad.ts)
  // Frozen batch norm + ReLU in one pass each way (layers.ts), on the threads OpenBLAS's kernels get.
  registerBatchNormFrozen(options.nativeKernels !== false, blas.kind === 'loaded' ? threads : 1);
  if (blas.kind !== 'loaded') {
    registerWasmTrainingKernels();
    return { threads: wasm.getThreadsCount(), ...(blas.kind === 'unavailable' ? { nativeKernelsSkipped: blas.reason } : {}) };
  }
  blas.kernels.setThreads(threads);
  registerWasmTrainingKernels({ blas: blas.kernels });
  return { threads, nativeKernels: blas.version };
}

async function tryBackend(name: BackendName, explicit: boolean, options: BackendOptions): Promise<BackendDetails | undefined> {
  switch (name) {
    case 'tfjs-node-gpu':
      return void (await useTfjsNode('@tensorflow/tfjs-node-gpu'));
    case 'tfjs-node':
      return void (await useTfjsNode('@tensorflow/tfjs-node'));
    case 'webgpu':
      return void (await useWebgpu(explicit, options));
    case 'wasm':
      return useWasm(options);
    case 'cpu':
      return void (await setBackendOrExplain('cpu'));
  }
}

/**
 * Makes the chosen backend tfjs's active one and logs which runs and why better ones were skipped.
 * An explicit preference that cannot run is an error naming why; 'auto' always ends at cpu at worst.
 */
export async function selectBackend(
  preference: BackendPreference,
  log: (message: string) => void,
  options: BackendOptions = {},
): Promise<SelectedBackend> {
  if (!backendPreferences.includes(preference)) {
    throw new StageError(`backend: unknown value "${String(preference)}" (expected one of ${backendPreferences.join(', ')})`);
  }
  // The cpu backend's resize gradients are wrong (see kernels/resize-gradients.ts); fix them whatever runs.
  registerResizeGradients('cpu');
  // Sum/Mean gradients without a CPU-built ones tensor (kernels/reduction-gradients.ts): same values, all backends.
  registerReductionGradients();
  // Relu's gradient in one dispatch on webgpu (kernels/relu-gradient.ts): the stock ops elsewhere.
  registerReluGradient();
  const ladder: BackendName[] = preference === 'auto' ? ['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'cpu'] : [preference];
  const reasons: string[] = [];
  for (const name of ladder) {
    try {
      const details = await tryBackend(name, preference !== 'auto', options);
      const { threads, nativeKernels, nativeKernelsSkipped } = details ?? {};
      const selected: SelectedBackend = {
        name, tfjsName: tf.getBackend(), reasons,
        ...(threads === undefined ? {} : { threads }), ...(nativeKernels === undefined ? {} : { nativeKernels }),
      };
      const skipped = reasons.length ? `; skipped ${reasons.join('; ')}` : '';
      const native = nativeKernels ? ` + OpenBLAS kernels (${nativeKernels})` : '';
      const noNative = nativeKernelsSkipped ? `; OpenBLAS kernels unavailable, convolutions run in wasm: ${nativeKernelsSkipped}` : '';
      log(`backend: ${name}${threads === undefined ? '' : ` (${threads} thread${threads === 1 ? '' : 's'})`}${native}${skipped}${noNative}`);
      return selected;
    } catch (error) {
      const reason = error instanceof Unavailable ? error.message : `failed: ${firstLine(error)}`;
      if (preference !== 'auto') throw new StageError(`backend "${name}" cannot run here: ${reason}`);
      reasons.push(`${name}: ${reason}`);
    }
  }
  throw new Error(`no tfjs backend could start: ${reasons.join('; ')}`); // unreachable in practice: cpu always starts
}
