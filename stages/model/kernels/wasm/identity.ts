// Identity for wasm as a shared buffer, as the cpu backend does it: the stock kernel copies the tensor (tfjs runs
// Identity for tf.clone, tf.keep'd gradient pass-throughs and customGrad outputs: ~580 calls and ~100 ms of a
// cpu profile train step, node --cpu-prof). The backend counts references per buffer (Reshape shares the same
// way), so disposing either tensor leaves the other intact.
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

function identity(args: { inputs: tf.NamedTensorInfoMap; backend: unknown }): tf.TensorInfo {
  const x = args.inputs['x'];
  if (!x) throw new Error('Identity (wasm): input x is required');
  (args.backend as BackendWasm).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export const wasmIdentityConfig: tf.KernelConfig = {
  kernelName: tf.Identity,
  backendName: 'wasm',
  kernelFunc: identity as unknown as tf.KernelFunc,
};
