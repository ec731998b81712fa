// Frozen batch normalisation (+ ReLU) on wasm as two kernels on a C addon (batch-norm-frozen.c): the forward pass
// and its gradient each one pass over the activation, shared among the backend's threads, where tfjs-wasm runs
// the ReLU and ~14 kernels of batch-norm gradient on one thread. layers.ts calls batchNormFrozenWasm where the
// kernels are registered; optional like the other native kernels (compiled on first use by runner/native-addon.ts;
// RUNNER_NATIVE_KERNELS=off leaves tf.batchNorm and tf.relu).
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { loadNativeAddon, NativeAddonUnavailableError } from '../../../../runner/native-addon.js';
import { nativeKernelsDisabled } from './blas-kernels.js';

const FORWARD = 'BatchNormFrozen';
const BACKWARD = 'BatchNormFrozenGrad';

interface BatchNormAddon {
  /** heap, m, c, x, mean, variance, gamma, beta, y, eps, relu */
  forward(heap: Float32Array, ...args: [...number[], number, boolean]): void;
  /** heap, m, c, dy, x, mean, variance, gamma, beta, dx, dgamma, dbeta, eps, relu */
  backward(heap: Float32Array, ...args: [...number[], number, boolean]): void;
  setThreads(threads: number): void;
}

interface Attrs {
  epsilon: number;
  relu: boolean;
}

interface WasmHeapAccess {
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  wasm: { HEAPU8: Uint8Array };
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown };

const SOURCE_FILE = fileURLToPath(new URL('./batch-norm-frozen.c', import.meta.url));

/** The heap and each tensor's element offset, taken after every output is allocated (the heap may grow). */
function offsets(backend: BackendWasm, tensors: tf.TensorInfo[]): { heap: Float32Array; at: number[] } {
  const access = backend as unknown as WasmHeapAccess;
  return { heap: new Float32Array(access.wasm.HEAPU8.buffer), at: tensors.map((t) => access.dataIdMap.get(t.dataId)!.memoryOffset / 4) };
}

/** Inputs in order, each float32; [m, c] of x. */
function operands(args: KernelArgs, names: string[]): { tensors: tf.TensorInfo[]; m: number; c: number } {
  const tensors = names.map((name) => {
    const t = args.inputs[name];
    if (!t || t.dtype !== 'float32') throw new Error(`${FORWARD}: input ${name} must be a float32 tensor`);
    return t;
  });
  const x = args.inputs['x']!;
  const c = x.shape.at(-1) ?? 0;
  for (const name of ['mean', 'variance', 'gamma', 'beta']) {
    if (tf.util.sizeFromShape(args.inputs[name]!.shape) !== c) throw new Error(`${FORWARD}: ${name} must have one value per channel (${c})`);
  }
  return { tensors, m: c > 0 ? tf.util.sizeFromShape(x.shape) / c : 0, c };
}

function kernels(addon: BatchNormAddon): tf.KernelConfig[] {
  const forward = (args: KernelArgs): tf.TensorInfo => {
    const { epsilon, relu } = args.attrs as unknown as Attrs;
    const { tensors, m, c } = operands(args, ['x', 'mean', 'variance', 'gamma', 'beta']);
    const backend = args.backend as BackendWasm;
    const y = backend.makeOutput([...tensors[0]!.shape], 'float32');
    if (m * c === 0) return y;
    const { heap, at } = offsets(backend, [...tensors, y]);
    addon.forward(heap, m, c, ...at, epsilon, relu);
    return y;
  };
  const backward = (args: KernelArgs): tf.TensorInfo[] => {
    const { epsilon, relu } = args.attrs as unknown as Attrs;
    const { tensors, m, c } = operands(args, ['dy', 'x', 'mean', 'variance', 'gamma', 'beta']);
    const backend = args.backend as BackendWasm;
    const outputs = [backend.makeOutput([...tensors[1]!.shape], 'float32'), backend.makeOutput([c], 'float32'), backend.makeOutput([c], 'float32')];
    if (m * c === 0) {
      for (const out of outputs.slice(1)) (backend.typedArrayFromHeap(out) as Float32Array).fill(0);
      return outputs;
    }
    const { heap, at } = offsets(backend, [...tensors, ...outputs]);
    addon.backward(heap, m, c, ...at, epsilon, relu);
    return outputs;
  };
  return [
    { kernelName: FORWARD, backendName: 'wasm', kernelFunc: forward as unknown as tf.KernelFunc },
    { kernelName: BACKWARD, backendName: 'wasm', kernelFunc: backward as unknown as tf.KernelFunc },
  ];
}

let addon: BatchNormAddon | null | undefined;

/**
 * Registers the two kernels for wasm with `threads` threads (`enabled`, the addon builds, RUNNER_NATIVE_KERNELS is
 * not off), else removes them; returns whether they are registered.
 */
export function registerBatchNormFrozen(enabled: boolean, threads: number): boolean {
  const registered = tf.getKernel(FORWARD, 'wasm') !== undefined;
  if (!enabled || nativeKernelsDisabled()) {
    if (registered) for (const name of [FORWARD, BACKWARD]) tf.unregisterKernel(name, 'wasm');
    return false;
  }
  if (addon === undefined) {
    try {
      addon = loadNativeAddon<BatchNormAddon>({ name: 'batch-norm-frozen', sourceFile: SOURCE_FILE, linkFlags: ['-O3', '-fopenmp', '-ffp-contract=off', '-lm'] });
    } catch (error) {
      if (!(error instanceof NativeAddonUnavailableError)) throw error;
      addon = null;
    }
  }
  if (!addon) return false;
  addon.setThreads(threads);
  if (!registered) for (const config of kernels(addon)) tf.registerKernel(config);
  return true;
}

/** Whether batchNormFrozenWasm can run now: the wasm backend is active and the kernels are registered. */
export function batchNormFrozenWasmAvailable(): boolean {
  return tf.getBackend() === 'wasm' && tf.getKernel(FORWARD, 'wasm') !== undefined;
}

/**
 * tf.batchNorm(x, mean, variance, beta, gamma, epsilon) over the last axis with mean and variance constant, then
 * tf.relu where `relu`; gradients for x, gamma and beta. wasm with the kernels registered only.
 */
export function batchNormFrozenWasm(x: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number, relu: boolean): tf.Tensor {
  const attrs = { epsilon, relu } as unknown as tf.NamedAttrMap;
  const normalise = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, scale, offset, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([input, scale, offset, mean, variance]); // saved: kept for the backward pass even where made in a tidy
    return {
      value: tf.engine().runKernel(FORWARD, { x: input, mean, variance, gamma: scale, beta: offset }, attrs) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedGamma, savedBeta, savedMean, savedVariance] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        const inputs = { dy, x: savedX, mean: savedMean, variance: savedVariance, gamma: savedGamma, beta: savedBeta };
        const [dx, dgamma, dbeta] = tf.engine().runKernel(BACKWARD, inputs, attrs) as tf.Tensor[];
        return [dx!, tf.reshape(dgamma!, savedGamma.shape), tf.reshape(dbeta!, savedBeta.shape)];
      },
    };
  });
  return normalise(x, gamma, beta);
}
