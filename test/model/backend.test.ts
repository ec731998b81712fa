// The backend ladder. A tfjs backend initialises once per process, so each case runs in its own Node
// process (a small script through tsx) and reports JSON on stdout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const backendModule = fileURLToPath(new URL('../../stages/model/backend.ts', import.meta.url));
// Absolute, so the child can run from a temp dir with no node_modules in sight.
const tsxLoader = import.meta.resolve('tsx');
const tfjsModule = import.meta.resolve('@tensorflow/tfjs');
const wasmModule = import.meta.resolve('@tensorflow/tfjs-backend-wasm');
const blasModule = fileURLToPath(new URL('../../stages/model/kernels/native/blas-kernels.ts', import.meta.url));

/** Runs `body` (an async script with selectBackend and tf in scope) in a fresh Node process from another cwd. */
async function inFreshProcess(body: string): Promise<{ result: Record<string, unknown>; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'backend-test-'));
  try {
    const script = join(dir, 'case.mts'); // .mts: ESM, for top-level await
    writeFileSync(script, [
      `import * as tf from ${JSON.stringify(tfjsModule)};`,
      `import { selectBackend } from ${JSON.stringify(backendModule)};`,
      `const logs: string[] = [];`,
      `const log = (m: string) => logs.push(m);`,
      `const out = await (async () => { ${body} })();`,
      `process.stdout.write(JSON.stringify({ ...out, logs }));`,
    ].join('\n'));
    // cwd is the temp dir: the wasm binaries must be found from anywhere.
    const { stdout, stderr } = await execa(process.execPath, ['--import', tsxLoader, script], { cwd: dir, timeout: 60_000, reject: false });
    const jsonStart = stdout.indexOf('{');
    assert.ok(jsonStart >= 0, `no result from the child process; stderr:\n${stderr}`);
    return { result: JSON.parse(stdout.slice(jsonStart)) as Record<string, unknown>, stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('auto picks the first backend of the ladder that starts, and logs why each better one was skipped', async () => {
  const { result } = await inFreshProcess(`
    const selected = await selectBackend('auto', log, { threads: 1 });
    return { selected, active: tf.getBackend() };`);
  const selected = result['selected'] as { name: string; tfjsName: string; reasons: string[] };
  const ladder = ['tfjs-node-gpu', 'tfjs-node', 'webgpu', 'wasm', 'cpu'];
  const skipped = ladder.slice(0, ladder.indexOf(selected.name));
  assert.deepEqual(selected.reasons.map((r) => r.split(':')[0]), skipped);
  for (const reason of selected.reasons) assert.match(reason, /: (not installed|failed|no GPU adapter|only a software adapter)/);
  assert.equal(result['active'], selected.tfjsName);
  const logs = result['logs'] as string[];
  assert.equal(logs.length, 1);
  assert.match(logs[0] as string, new RegExp(`^backend: ${selected.name}`));
  for (const name of skipped) assert.ok((logs[0] as string).includes(`${name}: `), `log names the skipped ${name}`);
});

test('wasm starts from any working directory and registers the training kernels it lacks', async () => {
  const { result } = await inFreshProcess(`
    const selected = await selectBackend('wasm', log, { threads: 1 });
    const kernels = ['Conv2DBackpropFilter', 'UnsortedSegmentSum'].filter((k) => tf.getKernel(k, 'wasm'));
    const g = tf.grad((w: tf.Tensor) => tf.conv2d(tf.ones([1, 5, 5, 2]) as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid').sum())(tf.ones([3, 3, 2, 1]));
    const blas = (await import(${JSON.stringify(blasModule)})).loadBlasKernels();
    return { selected, kernels, gradientSum: g.sum().dataSync()[0], blasThreads: blas.kind === 'loaded' ? blas.kernels.threads() : 1 };`);
  assert.equal((result['selected'] as { name: string }).name, 'wasm');
  assert.deepEqual(result['kernels'], ['Conv2DBackpropFilter', 'UnsortedSegmentSum']);
  assert.equal(result['gradientSum'], 3 * 3 * 2 * 9); // each filter tap sees 3x3 output positions of ones
  assert.equal(result['blasThreads'], 1, 'OpenBLAS follows the threads option');
});

test('wasm with threads: 2 runs XNNPACK on two threads in Node, and the process still exits by itself', async () => {
  const { result } = await inFreshProcess(`
    const selected = await selectBackend('wasm', log, { threads: 2, nativeKernels: false }); // XNNPACK's own pool
    const y = tf.conv2d(tf.ones([1, 16, 16, 8]) as tf.Tensor4D, tf.ones([3, 3, 8, 8]) as tf.Tensor4D, 1, 'valid');
    return { selected, value: y.max().dataSync()[0] };`);
  assert.equal((result['selected'] as { threads: number }).threads, 2);
  assert.equal(result['value'], 72);
  assert.match((result['logs'] as string[])[0] as string, /^backend: wasm \(2 threads\)/);
});

test('wasm without a working C compiler keeps its own kernels and says why on the same line', async () => {
  const { result } = await inFreshProcess(`
    process.env['CC'] = '/bin/false';
    delete process.env['RUNNER_NATIVE_KERNELS'];
    process.env['RUNNER_NATIVE_CACHE'] = process.cwd() + '/empty-native-cache';
    const selected = await selectBackend('wasm', log, { threads: 1 });
    const y = tf.conv2d(tf.ones([1, 4, 4, 2]) as tf.Tensor4D, tf.ones([3, 3, 2, 1]) as tf.Tensor4D, 1, 'valid');
    return { selected, value: y.dataSync()[0] };`);
  assert.equal((result['selected'] as { nativeKernels?: string }).nativeKernels, undefined);
  assert.equal(result['value'], 18);
  const logs = result['logs'] as string[];
  assert.equal(logs.length, 1);
  assert.match(logs[0] as string, /^backend: wasm \(1 thread\); OpenBLAS kernels unavailable, convolutions run in wasm: could not compile the blas-kernels addon with \/bin\/false/);
});

test('wasm with 2 threads gives them to OpenBLAS where the addon builds, and runs its single-threaded build', async () => {
  const { result } = await inFreshProcess(`
    const selected = await selectBackend('wasm', log, { threads: 2 });
    const y = tf.conv2d(tf.ones([2, 9, 9, 8]) as tf.Tensor4D, tf.ones([3, 3, 8, 4]) as tf.Tensor4D, 1, 'same');
    const blas = (await import(${JSON.stringify(blasModule)})).loadBlasKernels();
    const wasm = await import(${JSON.stringify(wasmModule)});
    return { selected, value: y.max().dataSync()[0], blasThreads: blas.kind === 'loaded' ? blas.kernels.threads() : 0, wasmThreads: wasm.getThreadsCount() };`);
  const selected = result['selected'] as { threads: number; nativeKernels?: string };
  assert.equal(result['value'], 72);
  if (selected.nativeKernels === undefined) return; // no OpenBLAS here: the line above said why
  assert.equal(selected.threads, 2);
  assert.equal(result['blasThreads'], 2);
  assert.equal(result['wasmThreads'], 1, 'wasm runs its single-threaded build beside OpenBLAS');
  assert.match((result['logs'] as string[])[0] as string, /^backend: wasm \(2 threads\) \+ OpenBLAS kernels \(OpenBLAS /);
});

test('an explicit backend that cannot run is an error naming it and the reason', async () => {
  const { result } = await inFreshProcess(`
    try { await selectBackend('tfjs-node-gpu', log); return { ok: true }; }
    catch (e) { return { ok: false, name: (e as Error).name, message: (e as Error).message }; }`);
  if (result['ok'] === true) return; // tfjs-node-gpu works on this machine: nothing to refuse
  assert.equal(result['name'], 'StageError');
  assert.match(result['message'] as string, /^backend "tfjs-node-gpu" cannot run here: (not installed|failed)/);
});

test('an unknown backend name is refused with the list of valid ones', async () => {
  const { selectBackend } = await import('../../stages/model/backend.js');
  await assert.rejects(selectBackend('tpu' as never, () => {}), /backend: unknown value "tpu" \(expected one of auto, tfjs-node-gpu, tfjs-node, webgpu, wasm, cpu\)/);
});
