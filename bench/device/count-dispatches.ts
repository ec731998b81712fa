// Dispatches of one training step on the webgpu backend, by program and by engine kernel: the figure
// docs/backend.md tracks. Runs on any WebGPU device, a GPU or Mesa's lavapipe here (slowly: ~75 s for the
// recipe's step at 128 px).
//   node --import tsx bench/device/count-dispatches.ts [model=recipe] [size=128]
// model: a Mask R-CNN preset (recipe, small: trainStep with AMSGrad, as the train stage runs it; FUSE=0 for
// AMSGrad op by op), or one of the benchmark models with everything fused (resnet50 B=2, unet B=4:
// trainOnBatch with the fused batch norm and FusedAdam). The count barely depends on the size (only the
// patch-matrix and ROI-gather chunks grow with it).
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../stages/model/backend.js';
import { configFromParams } from '../../stages/model/config.js';
import { MaskRcnn } from '../../stages/model/mask-rcnn.js';
import { buildTrainBatch } from '../../stages/model/molding.js';
import { seededRng } from '../../stages/model/sampler.js';
import { Amsgrad } from '../../stages/train/amsgrad.js';
import { syntheticSample } from '../synthetic-sample.js';
import { FusedAdam } from './fused-adam.js';
import { resnet50Classifier, residualUnet } from './webgpu-setup.js';

await selectBackend('webgpu', () => {});
const preset = process.argv[2] ?? 'recipe';
const size = Number(process.argv[3] ?? 128);

/** One step of the chosen model; its first call also makes the optimizer's state. */
async function stepper(): Promise<{ step: () => Promise<unknown>; trainable: number }> {
  if (preset === 'resnet50' || preset === 'unet') {
    const unet = preset === 'unet';
    const model = unet ? residualUnet(size, { fusedBatchNorm: true }) : resnet50Classifier(size, { fusedBatchNorm: true });
    const batchSize = unet ? 4 : 2;
    const x = tf.randomUniform([batchSize, size, size, 3]);
    const y = unet ? tf.cast(tf.greater(tf.randomUniform([batchSize, size, size, 1]), 0.5), 'float32') : tf.oneHot(tf.tensor1d([0, 1], 'int32'), 2);
    model.compile({ optimizer: new FusedAdam(1e-4), loss: unet ? (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.sigmoidCrossEntropy(yt, yp) : (yt: tf.Tensor, yp: tf.Tensor) => tf.losses.softmaxCrossEntropy(yt, yp) });
    return { step: () => model.trainOnBatch(x, y), trainable: model.trainableWeights.length };
  }
  const config = configFromParams({ preset, image: { size }, detection: { minConfidence: 0 } });
  const model = new MaskRcnn(config);
  const samples = [syntheticSample(size, 6, 'count-a'), syntheticSample(size, 4, 'count-b')];
  const batch = buildTrainBatch(samples, { ...config.image }, seededRng(1));
  const optimizer = new Amsgrad({ learningRate: 1e-4, fuseOnWebgpu: process.env['FUSE'] !== '0' });
  await model.trainStep(optimizer, batch); // builds the model
  return { step: () => model.trainStep(optimizer, batch), trainable: model.store.trainableVariables().length };
}
const { step, trainable } = await stepper();
await step();

const backend = tf.backend() as unknown as { runWebGPUProgram: (program: object, ...rest: unknown[]) => unknown };
const run = backend.runWebGPUProgram;
const byProgram = new Map<string, number>();
let total = 0;
backend.runWebGPUProgram = function (this: unknown, program: object, ...rest: unknown[]) {
  total++;
  const name = program.constructor.name;
  byProgram.set(name, (byProgram.get(name) ?? 0) + 1);
  return run.call(this, program, ...rest);
};
// Reads back to the host of data on the device (each waits for the device to reach that point: a host-device
// sync). Tensors made from JS arrays stay in CPU memory until a GPU program uses them; reading those costs nothing.
const reader = backend as unknown as { read: (dataId: object) => Promise<unknown>; tensorMap: { get(dataId: object): { values?: unknown } | undefined } };
const read = reader.read;
let reads = 0;
reader.read = function (this: unknown, dataId: object) {
  if (reader.tensorMap.get(dataId)?.values == null) reads++;
  return read.call(this, dataId);
};
const engine = tf.engine() as unknown as { runKernelFunc: (args: { kernelName?: string }) => unknown };
const runKernel = engine.runKernelFunc.bind(engine);
const byKernel = new Map<string, number>();
engine.runKernelFunc = (args) => {
  const name = args.kernelName ?? '(custom)';
  byKernel.set(name, (byKernel.get(name) ?? 0) + 1);
  return runKernel(args);
};
const t0 = performance.now();
await step();
const sorted = (m: Map<string, number>) => Object.fromEntries([...m].sort((a, b) => b[1] - a[1]));
console.log(JSON.stringify({
  preset, size, adapter: tf.getBackend(), stepMs: Math.round(performance.now() - t0), dispatches: total, readsBack: reads,
  trainableVariables: trainable, byProgram: sorted(byProgram), engineKernels: sorted(byKernel),
}, null, 1));
process.exit(0);
