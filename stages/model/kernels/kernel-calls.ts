// Composing a kernel out of a backend's own forward kernels (wasm: XNNPACK; webgpu: its shaders).
//
// A kernel function must not call tf ops (they would land on the gradient tape and in the engine's scope), so
// our kernels call the backend's registered kernel functions directly — the way tfjs composes its own kernels —
// and free every intermediate they made. Each call is a plain TensorInfo living in the backend's memory.
import * as tf from '@tensorflow/tfjs';

export type NamedInputs = Record<string, tf.TensorInfo>;

/** The backends our composed kernels are registered for. */
export type ComposingBackend = 'wasm' | 'webgpu';

/** Calls a backend's forward kernels by name and remembers the intermediates to free. */
export class KernelCalls {
  private readonly intermediates: tf.TensorInfo[] = [];

  constructor(readonly backendName: ComposingBackend, readonly backend: tf.KernelBackend) {}

  /** Runs the backend's kernel `name`; the result is freed by `dispose()` unless it is the one returned. */
  run(name: string, inputs: NamedInputs, attrs: object = {}): tf.TensorInfo {
    const config = tf.getKernel(name, this.backendName);
    if (!config) throw new Error(`the ${this.backendName} backend has no ${name} kernel to compose with`);
    const result = config.kernelFunc({
      inputs: inputs as tf.NamedTensorInfoMap,
      attrs: attrs as tf.NamedAttrMap,
      backend: this.backend,
    });
    if (Array.isArray(result)) throw new Error(`wasm kernel ${name} returned several outputs; expected one`);
    this.intermediates.push(result);
    return result;
  }

  /** Tracks a tensor made some other way (a program run directly) as one of this kernel's intermediates. */
  adopt(info: tf.TensorInfo): tf.TensorInfo {
    this.intermediates.push(info);
    return info;
  }

  transpose(x: tf.TensorInfo, perm: number[]): tf.TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  reshape(x: tf.TensorInfo, shape: number[]): tf.TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  /** Zero padding; `paddings` is [before, after] per axis. */
  pad(x: tf.TensorInfo, paddings: Array<[number, number]>): tf.TensorInfo {
    if (paddings.every(([a, b]) => a === 0 && b === 0)) return x;
    return this.run('PadV2', { x }, { paddings, constantValue: 0 });
  }

  slice(x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo {
    if (begin.every((b) => b === 0) && size.every((s, axis) => s === x.shape[axis])) return x;
    return this.run('Slice', { x }, { begin, size });
  }

  /**
   * Pads (positive amounts) or crops (negative amounts) each axis at both ends: the combination the
   * conv-gradient index arithmetic produces, where a "padding" may come out negative.
   */
  padOrCrop(x: tf.TensorInfo, amounts: Array<[number, number]>): tf.TensorInfo {
    const begin = amounts.map(([before]) => Math.max(0, -before));
    const size = amounts.map(([before, after], axis) => (x.shape[axis] ?? 0) - Math.max(0, -before) - Math.max(0, -after));
    if (size.some((s) => s <= 0)) throw new Error(`padOrCrop of shape [${x.shape}] by ${JSON.stringify(amounts)} leaves nothing`);
    const cropped = this.slice(x, begin, size);
    return this.pad(cropped, amounts.map(([before, after]) => [Math.max(0, before), Math.max(0, after)]));
  }

  reverse(x: tf.TensorInfo, dims: number[]): tf.TensorInfo {
    return this.run('Reverse', { x }, { dims });
  }

  /**
   * Forward NHWC conv of `x` padded (positive amounts) or cropped (negative) along H and W: the crop is a slice,
   * the padding goes to the conv as explicit padding (no padded copy of x). Filter [kh, kw, in, out].
   */
  conv2dPadOrCrop(x: tf.TensorInfo, filter: tf.TensorInfo, amounts: [[number, number], [number, number]], strides: [number, number], dilations: [number, number]): tf.TensorInfo {
    const cropped = this.padOrCrop(x, [[0, 0], [Math.min(0, amounts[0][0]), Math.min(0, amounts[0][1])], [Math.min(0, amounts[1][0]), Math.min(0, amounts[1][1])], [0, 0]]);
    const pad = [[0, 0], amounts[0].map((a) => Math.max(0, a)), amounts[1].map((a) => Math.max(0, a)), [0, 0]];
    return this.run('Conv2D', { x: cropped, filter }, { strides, pad, dataFormat: 'NHWC', dilations, dimRoundingMode: undefined });
  }

  /** Forward NHWC conv with explicit zero padding already applied ('valid'). Filter [kh, kw, in, out]. */
  conv2dValid(x: tf.TensorInfo, filter: tf.TensorInfo, strides: [number, number], dilations: [number, number]): tf.TensorInfo {
    return this.run('Conv2D', { x, filter }, { strides, pad: 'valid', dataFormat: 'NHWC', dilations, dimRoundingMode: undefined });
  }

  /**
   * Runs `build` and returns its result with every other intermediate freed; on an error frees them all and
   * rethrows. `build` may return undefined (the caller then takes another route) and nothing is kept.
   */
  compose<T extends tf.TensorInfo | undefined>(build: () => T): T {
    try {
      const result = build();
      this.dispose(result);
      return result;
    } catch (error) {
      this.dispose();
      throw error;
    }
  }

  /** Frees every intermediate except `keep` (the kernel's output). */
  dispose(keep?: tf.TensorInfo): void {
    for (const info of this.intermediates) {
      if (info !== keep) this.backend.disposeData(info.dataId);
    }
    this.intermediates.length = 0;
  }
}
