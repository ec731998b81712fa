// UnsortedSegmentSum for the wasm backend, which ships none. tfjs takes the gradient of tf.gather through it
// (the rows a gather read receive the sum of their output gradients), so without it nothing that gathers
// — ROI Align's bilinear sampling, the losses' index picks — can train on wasm.
//
// No forward kernel expresses it (ScatterNd would, but only for in-range ids), so this is one pass over the
// wasm heap: out[ids[i], k] += x[i, k]. Ids outside [0, numSegments) are dropped, as TensorFlow does.
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

function unsortedSegmentSum(args: { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo {
  const x = args.inputs['x'];
  const segmentIds = args.inputs['segmentIds'];
  if (!x || !segmentIds) throw new Error('UnsortedSegmentSum (wasm): inputs x and segmentIds are required');
  const numSegments = Number((args.attrs ?? {})['numSegments']);
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`UnsortedSegmentSum (wasm): numSegments must be a non-negative integer, got ${numSegments}`);
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32') throw new Error(`UnsortedSegmentSum (wasm): unsupported dtype ${x.dtype}`);
  const idRank = segmentIds.shape.length;
  if (segmentIds.shape.join() !== x.shape.slice(0, idRank).join()) {
    throw new Error(`UnsortedSegmentSum (wasm): segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`);
  }
  const backend = args.backend as BackendWasm;
  // x: [N (= product of the id dims), inner]; out: [numSegments, inner]
  const inner = tf.util.sizeFromShape(x.shape.slice(idRank));
  const out = backend.makeOutput([numSegments, ...x.shape.slice(idRank)], x.dtype);
  // Views are taken after makeOutput: allocating may grow the wasm memory and detach older views.
  const outValues = backend.typedArrayFromHeap(out);
  const values = backend.typedArrayFromHeap(x);
  const idsRaw = backend.typedArrayFromHeap(segmentIds);
  outValues.fill(0);
  const count = idsRaw.length;
  for (let i = 0; i < count; i++) {
    const segment = idsRaw[i] as number;
    if (!(segment >= 0 && segment < numSegments)) continue;
    const from = i * inner;
    const to = segment * inner;
    for (let k = 0; k < inner; k++) outValues[to + k] = (outValues[to + k] as number) + (values[from + k] as number);
  }
  return out;
}

export const wasmUnsortedSegmentSumConfig: tf.KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSum as unknown as tf.KernelFunc,
};
