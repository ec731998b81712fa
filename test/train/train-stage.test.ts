// The train stage as the pipeline runs it: a real process on a tiny synthetic set with a tiny model config.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stagesCommand } from '../helpers/paths.js';

const tinyModel = JSON.stringify({
  preset: 'small',
  config: {
    image: { size: 64 },
    rpn: { preNmsTopN: 200, postNmsTopNTrain: 50, postNmsTopNTest: 50, batchSizePerImage: 32 },
    roi: { batchSizePerImage: 16, addGtAsProposals: true },
  },
});

let dir = '';
let data = '';

function dsb2018(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const [node, ...prefix] = stagesCommand;
  return spawnSync(node!, [...prefix, ...args], { encoding: 'utf8' });
}

function trainArgs(out: string, extra: string[] = []): string[] {
  return ['train', '--data', data, '--train-ids', join(dir, 'train.txt'), '--val-ids', join(dir, 'val.txt'), '--model', tinyModel,
    '--lr', '1e-3', '--steps-per-epoch', '2', '--backend', 'wasm', '--threads', '1', '--seed', '3', '--augment', 'none', '--out', out, ...extra];
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'train-stage-'));
  data = join(dir, 'rgb');
  for (const args of [
    ['synth', '--out', join(dir, 'synth'), '--n', '4', '--preset', 'easy', '--size', '64-80', '--seed', '5'],
    ['fix-masks', '--in', join(dir, 'synth'), '--out', join(dir, 'fixed')],
    ['strip-alpha', '--in', join(dir, 'fixed'), '--out', data],
  ]) {
    const result = dsb2018(args);
    assert.equal(result.status, 0, result.stderr);
  }
  writeFileSync(join(dir, 'train.txt'), 'synth_0000\nsynth_0001\nsynth_0002\n');
  writeFileSync(join(dir, 'val.txt'), 'synth_0003\n');
});

test('a phase writes the best checkpoint, its history, a loss curve and metrics', () => {
  const out = join(dir, 'model-a');
  const metrics = join(dir, 'a.json');
  const result = dsb2018([...trainArgs(out, ['--epochs', '2', '--metrics', metrics])]);
  assert.equal(result.status, 0, result.stderr);
  for (const file of ['model.json', 'weights.bin', 'history.json', 'loss-curve.png']) assert.ok(existsSync(join(out, file)), file);
  const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) as { history: Array<{ epoch: number; val?: { loss_total: number } }>; bestEpoch: number };
  assert.deepEqual(history.history.map((r) => r.epoch), [1, 2]);
  assert.ok(history.history.every((r) => Number.isFinite(r.val?.loss_total)));
  const m = JSON.parse(readFileSync(metrics, 'utf8')) as { epochs: number; best_epoch: number; best_val_loss: number; backend: string; native_kernels: string | null };
  assert.equal(m.epochs, 2);
  assert.equal(m.backend, 'wasm');
  assert.ok(m.native_kernels === null || m.native_kernels.startsWith('OpenBLAS'), `native_kernels ${m.native_kernels}`);
  assert.equal(m.best_val_loss, Math.min(...history.history.map((r) => r.val!.loss_total)));
  assert.equal(m.best_epoch, history.bestEpoch);
});

test('the same seed on the same backend repeats the run exactly', () => {
  const a = dsb2018(trainArgs(join(dir, 'rep-a'), ['--epochs', '1']));
  const b = dsb2018(trainArgs(join(dir, 'rep-b'), ['--epochs', '1']));
  assert.equal(a.status, 0, a.stderr);
  assert.equal(b.status, 0, b.stderr);
  const losses = (d: string) => JSON.parse(readFileSync(join(dir, d, 'history.json'), 'utf8')).history;
  assert.deepEqual(losses('rep-a').map((r: { train: unknown; val: unknown }) => [r.train, r.val]), losses('rep-b').map((r: { train: unknown; val: unknown }) => [r.train, r.val]));
});

test('a phase killed after an epoch resumes from its checkpoint instead of starting over', async () => {
  const checkpoints = join(dir, 'ck');
  const out = join(dir, 'model-r');
  const [node, ...prefix] = stagesCommand;
  // First run: killed (SIGKILL) as soon as epoch 1's checkpoint is complete.
  const child = spawn(node!, [...prefix, ...trainArgs(out, ['--epochs', '3', '--checkpoints', checkpoints])], { stdio: 'ignore' });
  const lastMeta = join(checkpoints, 'last', 'model.json');
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (existsSync(lastMeta)) {
        clearInterval(timer);
        child.kill('SIGKILL');
        resolve();
      }
    }, 50);
    child.on('exit', () => {
      clearInterval(timer);
      existsSync(lastMeta) ? resolve() : reject(new Error('the first run ended before writing a checkpoint'));
    });
  });
  await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.on('exit', resolve)));
  assert.equal(existsSync(join(out, 'model.json')), false, 'a killed phase leaves no output');
  const resumed = JSON.parse(readFileSync(lastMeta, 'utf8')).meta.epoch as number;
  assert.ok(resumed >= 1 && resumed < 3, `killed after epoch ${resumed}`);
  const second = dsb2018(trainArgs(out, ['--epochs', '3', '--checkpoints', checkpoints]));
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stderr, new RegExp(`resuming phase after epoch ${resumed}`));
  const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')).history as Array<{ epoch: number }>;
  assert.deepEqual(history.map((r) => r.epoch), [1, 2, 3]);
});

test('a phase given more epochs continues its checkpoint and ends exactly where an uninterrupted longer run ends', () => {
  const checkpoints = join(dir, 'ck-extend');
  const first = dsb2018(trainArgs(join(dir, 'extend-1'), ['--epochs', '1', '--checkpoints', checkpoints]));
  assert.equal(first.status, 0, first.stderr);
  const second = dsb2018(trainArgs(join(dir, 'extend-2'), ['--epochs', '2', '--checkpoints', checkpoints]));
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stderr, /resuming phase after epoch 1/);
  const losses = (d: string) => (JSON.parse(readFileSync(join(dir, d, 'history.json'), 'utf8')).history as Array<{ train: unknown; val: unknown }>).map((r) => [r.train, r.val]);
  assert.deepEqual(losses('extend-2'), losses('model-a'), 'epochs 1 + 1 = the 2-epoch run of the first test');
  // Fewer epochs than the checkpoint has: that epoch's weights are gone, so the phase starts over.
  const third = dsb2018(trainArgs(join(dir, 'extend-3'), ['--epochs', '1', '--checkpoints', checkpoints]));
  assert.equal(third.status, 0, third.stderr);
  assert.match(third.stderr, /at epoch 2, past the 1 epochs asked for: starting over/);
});

test('bad flags are one clear error line', () => {
  const result = dsb2018(trainArgs(join(dir, 'bad'), ['--epochs', 'zero']));
  assert.equal(result.status, 1);
  assert.match(result.stderr, /--epochs: "zero" is not a number/);
  const model = dsb2018([...trainArgs(join(dir, 'bad2'), ['--epochs', '1']).map((a) => (a === tinyModel ? '{"preset":"small","config":{"rpn":{"nmsThreshh":1}}}' : a))]);
  assert.equal(model.status, 1);
  assert.match(model.stderr, /unknown key "rpn\.nmsThreshh"/);
  assert.equal(existsSync(join(dir, 'bad2')), false);
});

test('a phase with image.trainInputSize trains windows and saves the molded side for inference', () => {
  const out = join(dir, 'model-window');
  const model = JSON.stringify({ ...JSON.parse(tinyModel), config: { ...JSON.parse(tinyModel).config, image: { size: 128, trainInputSize: 64 } } });
  const args = trainArgs(out, ['--epochs', '1']).map((arg) => (arg === tinyModel ? model : arg));
  const result = dsb2018(args);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /64 px windows of images molded to 128 px/);
  const saved = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')) as { meta: { config: { image: { size: number; trainInputSize: number } } } };
  assert.deepEqual([saved.meta.config.image.size, saved.meta.config.image.trainInputSize], [128, 64]);
});
