// `npm run bench -- model-kernels`: a small conv net's training step on the cpu backend vs wasm (stock
// kernels where stock can run at all, vs ours), wasm on 1 vs 2 threads, and the Conv2DBackpropInput kernel
// alone (stock wasm vs ours). tfjs initialises the wasm backend once per process, so each thread count
// runs in a child process: `node --import tsx bench/model-kernels.ts --child THREADS` prints JSON.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import * as tf from '@tensorflow/tfjs';
import type { BenchResult } from './run.js';

interface ChildResult {
  threads: number;
  cpuStepMs?: number;
  oursStepMs: number;
  stockStepError: string;
  stockInputStepMs: number;
  backpropInput: Array<{ shape: string; stockMs: number; oursMs: number }>;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] ?? NaN;
};

async function child(threads: number, withCpu: boolean): Promise<ChildResult> {
  const { selectBackend } = await import('../stages/model/backend.js');
  const { registerWasmTrainingKernels, restoreStockWasmKernels } = await import('../stages/model/kernels/wasm/register.js');
  await selectBackend('wasm', () => {}, { threads });

  // The net: ResNet-like stem, a strided 1x1, a 3x3, a 2x2/2 deconv head; B=2, 128x128.
  const shapes: Array<[string, number[]]> = [
    ['stem', [7, 7, 3, 32]], ['c2', [3, 3, 32, 32]], ['c3', [1, 1, 32, 64]], ['c3b', [3, 3, 64, 64]], ['up', [2, 2, 32, 64]], ['out', [1, 1, 32, 1]],
  ];
  const makeStep = () => {
    const vars = shapes.map(([, shape]) => tf.variable(tf.randomNormal(shape, 0, 0.1, 'float32', 1)));
    const x = tf.randomNormal([2, 128, 128, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
    const y = tf.cast(tf.greater(tf.randomUniform([2, 64, 64, 1], 0, 1, 'float32', 3), 0.5), 'float32');
    const optimizer = tf.train.sgd(1e-3);
    const step = () => tf.tidy(() => {
      const [stem, c2, c3, c3b, up, out] = vars as [tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable];
      optimizer.minimize(() => {
        let h = tf.relu(tf.conv2d(x, stem as tf.Tensor4D, 2, 'same')); // [2, 64, 64, 32]
        h = tf.maxPool(h, 3, 2, 'same'); // [2, 32, 32, 32]
        h = tf.relu(tf.conv2d(h, c2 as tf.Tensor4D, 1, 'same'));
        h = tf.relu(tf.conv2d(h, c3 as tf.Tensor4D, 2, 'valid')); // [2, 16, 16, 64]
        h = tf.relu(tf.conv2d(h, c3b as tf.Tensor4D, 1, 'same'));
        h = tf.relu(tf.conv2dTranspose(h, up as tf.Tensor4D, [2, 32, 32, 32], 2, 'valid'));
        const logits = tf.image.resizeNearestNeighbor(tf.conv2d(h, out as tf.Tensor4D, 1, 'valid'), [64, 64]);
        return tf.losses.sigmoidCrossEntropy(y, logits) as tf.Scalar;
      }, false, vars);
    });
    return { step, dispose: () => { vars.forEach((v) => v.dispose()); x.dispose(); y.dispose(); } };
  };
  const timeSteps = (count: number): number => {
    const { step, dispose } = makeStep();
    step(); // warm-up: XNNPACK operator creation, JIT
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      step();
      tf.backend().readSync?.(tf.zeros([1]).dataId); // wasm and cpu are synchronous: nothing pending
      times.push(performance.now() - t0);
    }
    dispose();
    return median(times);
  };

  const oursStepMs = timeSteps(5);

  // Stock wasm: without our Conv2DBackpropFilter there is no training step at all.
  let stockStepError = '';
  tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
  try {
    timeSteps(1);
  } catch (error) {
    stockStepError = (error as Error).message.split('\n')[0] ?? '';
  }
  // Ours except Conv2DBackpropInput (stock): what our replacement of that kernel buys in a step.
  registerWasmTrainingKernels({ replaceSlowStock: false });
  const stockInputStepMs = timeSteps(5);

  // The kernel alone.
  const backpropInput: ChildResult['backpropInput'] = [];
  for (const [dyShape, filterShape, stride] of [
    [[2, 32, 32, 64], [3, 3, 64, 64], 1], [[2, 16, 16, 128], [3, 3, 64, 128], 2], [[2, 64, 64, 32], [7, 7, 3, 32], 2],
  ] as Array<[[number, number, number, number], [number, number, number, number], number]>) {
    const dy = tf.randomNormal(dyShape) as tf.Tensor4D;
    const filter = tf.randomNormal(filterShape) as tf.Tensor4D;
    const inputShape: [number, number, number, number] = [dyShape[0]!, dyShape[1]! * stride, dyShape[2]! * stride, filterShape[2]!];
    const time = () => {
      const run = () => tf.tidy(() => tf.conv2dTranspose(dy, filter, inputShape, stride, 'same').dataSync());
      run();
      const ts: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        run();
        ts.push(performance.now() - t0);
      }
      return median(ts);
    };
    restoreStockWasmKernels();
    const stockMs = time();
    registerWasmTrainingKernels();
    const oursMs = time();
    backpropInput.push({ shape: `dy [${dyShape}], filter [${filterShape}], stride ${stride}`, stockMs, oursMs });
  }
  registerWasmTrainingKernels();

  let cpuStepMs: number | undefined;
  if (withCpu) {
    await tf.setBackend('cpu');
    cpuStepMs = timeSteps(2);
  }
  return { threads, oursStepMs, stockStepError, stockInputStepMs, backpropInput, ...(cpuStepMs === undefined ? {} : { cpuStepMs }) };
}

async function inChild(threads: number, withCpu: boolean): Promise<ChildResult> {
  const self = fileURLToPath(import.meta.url);
  const { stdout } = await execa(process.execPath, ['--import', 'tsx', self, '--child', String(threads), withCpu ? 'cpu' : ''], { timeout: 600_000 });
  return JSON.parse(stdout.slice(stdout.indexOf('{'))) as ChildResult;
}

export async function run(): Promise<BenchResult[]> {
  const one = await inChild(1, true);
  const two = await inChild(2, false);
  const command = 'node --import tsx bench/model-kernels.ts --child THREADS';
  const results: BenchResult[] = [
    { name: 'small conv net train step (B=2, 128x128, SGD), cpu backend', value: one.cpuStepMs ?? NaN, unit: 'ms', command },
    { name: 'same step, stock wasm', value: NaN, unit: 'ms', note: `cannot train: ${one.stockStepError}` },
    { name: 'same step, wasm 1 thread, ours except stock Conv2DBackpropInput', value: one.stockInputStepMs, unit: 'ms' },
    { name: 'same step, wasm 1 thread, our kernels', value: one.oursStepMs, unit: 'ms', note: `${((one.cpuStepMs ?? NaN) / one.oursStepMs).toFixed(1)}x cpu` },
    { name: 'same step, wasm 2 threads, our kernels', value: two.oursStepMs, unit: 'ms', note: `${(one.oursStepMs / two.oursStepMs).toFixed(2)}x 1 thread` },
  ];
  for (const [i, k] of one.backpropInput.entries()) {
    const k2 = two.backpropInput[i];
    results.push({
      name: `Conv2DBackpropInput ${k.shape}, ours (1 thread)`, value: k.oursMs, unit: 'ms',
      note: `stock ${k.stockMs.toFixed(1)} ms (${(k.stockMs / k.oursMs).toFixed(1)}x); 2 threads: ours ${k2?.oursMs.toFixed(1)} ms, stock ${k2?.stockMs.toFixed(1)} ms`,
    });
  }
  return [...results, ...recordedDeviceCpuResults(), ...recordedWebgpuResults()];
}

/** The same children run on the lent machine's idle 16-core CPU (this machine is shared and loaded). */
function recordedDeviceCpuResults(): BenchResult[] {
  const file = fileURLToPath(new URL('./device/wasm-threads.device.json', import.meta.url));
  if (!existsSync(file)) return [];
  const recorded = JSON.parse(readFileSync(file, 'utf8')) as { machine: string; byThreads: Record<string, ChildResult> };
  const one = recorded.byThreads['1'];
  if (!one) return [];
  const note = `recorded: ${recorded.machine}`;
  const rows: BenchResult[] = [
    { name: 'idle 16-core host: small conv net step, cpu backend', value: one.cpuStepMs ?? NaN, unit: 'ms', note },
    { name: 'idle 16-core host: same step, wasm 1 thread, ours except stock Conv2DBackpropInput', value: one.stockInputStepMs, unit: 'ms', note },
  ];
  for (const [threads, r] of Object.entries(recorded.byThreads)) {
    rows.push({ name: `idle 16-core host: same step, wasm ${threads} thread(s), our kernels`, value: r.oursStepMs, unit: 'ms', note: `${(one.oursStepMs / r.oursStepMs).toFixed(2)}x 1 thread` });
  }
  const k = one.backpropInput[0];
  if (k) rows.push({ name: `idle 16-core host: Conv2DBackpropInput ${k.shape}, ours (1 thread)`, value: k.oursMs, unit: 'ms', note: `stock ${k.stockMs.toFixed(1)} ms` });
  return rows;
}

/** The last run of bench/device/webgpu-step.ts on the lent GPU (it cannot run here), as recorded rows. */
function recordedWebgpuResults(): BenchResult[] {
  const file = fileURLToPath(new URL('./device/webgpu-step.h100.json', import.meta.url));
  if (!existsSync(file)) return [];
  const recorded = JSON.parse(readFileSync(file, 'utf8')) as {
    started: string;
    correctnessWorstOurs: number;
    trainStep: Record<string, { medianMs: number }>;
    profile: Record<string, Record<string, { ms: number }>>;
  };
  const on = `recorded ${recorded.started.slice(0, 10)} on one H100 (Dawn/Vulkan) by bench/device/webgpu-step.ts`;
  const rows: BenchResult[] = Object.entries(recorded.trainStep).map(([variant, step]) => ({
    name: `webgpu ResNet-50 B=2 512x512 Adam train step, ${variant}`, value: step.medianMs, unit: 'ms', note: on,
  }));
  for (const [variant, kernels] of Object.entries(recorded.profile)) {
    const filter = kernels['Conv2DBackpropFilter'];
    if (filter) rows.push({ name: `webgpu GPU time of Conv2DBackpropFilter in one step, ${variant}`, value: filter.ms, unit: 'ms', note: 'tf.profile' });
  }
  rows.push({ name: 'webgpu conv gradients, ours vs cpu, worst max-abs-relative error (21 shapes)', value: recorded.correctnessWorstOurs, unit: '', target: '≤ 1e-4', ok: recorded.correctnessWorstOurs <= 1e-4 });
  return rows;
}

if (process.argv[2] === '--child') {
  const result = await child(Number(process.argv[3]), process.argv[4] === 'cpu');
  process.stdout.write(JSON.stringify(result));
}
