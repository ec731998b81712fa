// The AMSGrad update as one wasm kernel, 'AmsgradUpdate', on a small C addon (amsgrad-update.c): one pass per
// variable instead of 13 tfjs-wasm kernels, with the op-by-op update's float32 results to the bit.
// stages/train/amsgrad.ts calls it on wasm where it is registered; optional like the other native kernels
// (compiled on first use by runner/native-addon.ts; RUNNER_NATIVE_KERNELS=off leaves the op-by-op update).
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { loadNativeAddon, NativeAddonUnavailableError } from '../../../../runner/native-addon.js';
import { nativeKernelsDisabled } from './blas-kernels.js';

export const AMSGRAD_UPDATE = 'AmsgradUpdate';

interface AmsgradAddon {
  update(heap: Float32Array, ...sizesOffsetsAndConstants: number[]): void;
}

/** Attributes of AmsgradUpdate; inputs x, g, m, v, vhat and optionally scale (the clip factor, a scalar). */
export interface AmsgradUpdateAttrs {
  beta1: number;
  beta2: number;
  /** lr * sqrt(1 - beta2^t) / (1 - beta1^t). */
  learningRate: number;
  epsilon: number;
  /** The weight decay coefficient folded into the gradient, or null. */
  decay: number | null;
}

interface WasmHeapAccess {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  wasm: { HEAPU8: Uint8Array };
}

const SOURCE_FILE = fileURLToPath(new URL('./amsgrad-update.c', import.meta.url));

function updateKernel(addon: AmsgradAddon): tf.KernelConfig {
  const kernelFunc = (args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo[] => {
    const { x, g, m, v, vhat, scale } = args.inputs;
    if (!x || !g || !m || !v || !vhat) throw new Error(`${AMSGRAD_UPDATE}: inputs x, g, m, v, vhat are required`);
    const attrs = args.attrs as unknown as AmsgradUpdateAttrs;
    const n = tf.util.sizeFromShape(x.shape);
    for (const t of [g, m, v, vhat]) {
      if (tf.util.sizeFromShape(t.shape) !== n || t.dtype !== 'float32') throw new Error(`${AMSGRAD_UPDATE}: every input must be float32 of ${n} elements`);
    }
    const backend = args.backend as BackendWasm;
    const outputs = [x, m, v, vhat].map((t) => backend.makeOutput([...t.shape], 'float32'));
    if (n === 0) return outputs;
    const access = backend as unknown as WasmHeapAccess;
    const offset = (t: tf.TensorInfo) => access.dataIdMap.get(t.dataId)!.memoryOffset / 4;
    addon.update(new Float32Array(access.wasm.HEAPU8.buffer), n, offset(x), offset(g), offset(m), offset(v), offset(vhat), scale ? offset(scale) : -1,
      ...outputs.map(offset), attrs.beta1, 1 - attrs.beta1, attrs.beta2, 1 - attrs.beta2, attrs.learningRate, attrs.epsilon, attrs.decay ?? Number.NaN);
    return outputs;
  };
  return { kernelName: AMSGRAD_UPDATE, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}

/**
 * Registers AmsgradUpdate for wasm (`enabled`, the addon builds, RUNNER_NATIVE_KERNELS is not off), else removes
 * it; returns whether it is registered.
 */
export function registerAmsgradUpdate(enabled: boolean): boolean {
  const registered = tf.getKernel(AMSGRAD_UPDATE, 'wasm') !== undefined;
  if (!enabled || nativeKernelsDisabled()) {
    if (registered) tf.unregisterKernel(AMSGRAD_UPDATE, 'wasm');
    return false;
  }
  if (registered) return true;
  try {
    tf.registerKernel(updateKernel(loadNativeAddon<AmsgradAddon>({ name: 'amsgrad-update', sourceFile: SOURCE_FILE, linkFlags: ['-ffp-contract=off', '-lm'] })));
    return true;
  } catch (error) {
    if (!(error instanceof NativeAddonUnavailableError)) throw error;
    return false;
  }
}
