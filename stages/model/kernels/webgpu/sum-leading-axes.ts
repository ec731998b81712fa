// Sum over every axis but the last (a bias gradient: dy [N, H, W, C] -> [C]; a dense layer's: [R, C] -> [C]) as
// one matMul with a row of ones, [1, M] x [M, C], on webgpu.
//
// tfjs-backend-webgpu reduces only along the innermost axis, so its Sum over the leading axes first transposes
// the whole input to [C, M]: a full-size copy (134 MB for a [2, 256, 256, 256] gradient of the recipe at 512)
// and a second dispatch, for every conv bias of every step. Other reductions go to the stock kernel. The ones
// rows are kept per M for the backend's life (a few distinct feature-map sizes).
import * as tf from '@tensorflow/tfjs';
import { KernelCalls } from '../kernel-calls.js';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown };

/** Below this many rows the stock reduce is as good (and no ones row is kept). */
const MIN_ROWS = 64;

const onesRows = new WeakMap<object, Map<number, tf.TensorInfo>>();

/** A [1, 1, m] row of ones, made once per backend and m and never freed (shared with split-k-product.ts). */
export function onesRow(backend: tf.KernelBackend, m: number): tf.TensorInfo {
  let rows = onesRows.get(backend);
  if (!rows) onesRows.set(backend, (rows = new Map()));
  let row = rows.get(m);
  if (!row) {
    const fill = tf.getKernel('Fill', 'webgpu');
    if (!fill) throw new Error('the webgpu backend has no Fill kernel');
    row = fill.kernelFunc({ inputs: {}, attrs: { shape: [1, 1, m], value: 1, dtype: 'float32' }, backend }) as tf.TensorInfo;
    rows.set(m, row);
  }
  return row;
}

function sumLeadingAxes(stock: () => tf.KernelConfig | undefined, args: KernelArgs): tf.TensorInfo {
  const x = args.inputs['x'];
  const attrs = (args.attrs ?? {}) as unknown as { axis: number | number[]; keepDims: boolean };
  const fallback = () => {
    const config = stock();
    if (!config) throw new Error('Sum (webgpu): the stock kernel is missing');
    return config.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  };
  if (!x || x.dtype !== 'float32' || x.shape.length < 2) return fallback();
  const rank = x.shape.length;
  const axes = [...tf.util.parseAxisParam(attrs.axis, x.shape)].sort((a, b) => a - b);
  const channels = x.shape[rank - 1]!;
  const rows = tf.util.sizeFromShape(x.shape) / channels;
  if (axes.length !== rank - 1 || axes.some((a, i) => a !== i) || rows < MIN_ROWS || channels === 0) return fallback();
  const backend = args.backend as tf.KernelBackend;
  const calls = new KernelCalls('webgpu', backend);
  return calls.compose(() => {
    const x3 = calls.reshape(x, [1, rows, channels]);
    const summed = calls.run('BatchMatMul', { a: onesRow(backend, rows), b: x3 }, { transposeA: false, transposeB: false }); // [1, 1, C]
    return calls.reshape(summed, attrs.keepDims ? [...new Array<number>(rank - 1).fill(1), channels] : [channels]);
  });
}

/** The Sum kernel for webgpu; `stock` gives the kernel it replaces, for every other reduction. */
export function sumLeadingAxesConfig(stock: () => tf.KernelConfig | undefined): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs) => sumLeadingAxes(stock, args);
  return { kernelName: tf.Sum, backendName: 'webgpu', kernelFunc: kernelFunc as unknown as tf.KernelFunc };
}
