import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { PredictionsWriter, readImagePredictions, readPredictionsManifest, instanceFromCrop } from '../../stages/predict/predictions.js';
import { cropFromFullMask } from '../../stages/evaluate/crop-mask.js';
import { decodeRle } from '../../stages/evaluate/rle.js';
import { stagesCommand } from '../helpers/paths.js';

const W = 10;
const H = 8;

function block(x: number, y: number, w: number, h: number) {
  const mask = new Uint8Array(W * H);
  for (let j = y; j < y + h; j++) for (let i = x; i < x + w; i++) mask[j * W + i] = 1;
  return cropFromFullMask(mask, W, H);
}

async function inputs(): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'postprocess-')), 'preds');
  const writer = new PredictionsWriter(dir);
  await writer.add({
    id: 'img',
    width: W,
    height: H,
    instances: [
      instanceFromCrop(block(0, 0, 5, 4), 0.6, W, H),
      instanceFromCrop(block(3, 0, 5, 4), 0.9, W, H),
      instanceFromCrop(block(0, 6, 2, 2), 0.95, W, H), // 4 px: dropped
    ],
  });
  await writer.add({ id: 'empty', width: W, height: H, instances: [] });
  await writer.finish();
  return dir;
}

function dsb2018(args: string[]) {
  const [node, ...rest] = stagesCommand;
  return spawnSync(node!, [...rest, ...args], { encoding: 'utf8', env: { ...process.env, RUNNER_EVENTS: '' } });
}

test('the postprocess stage writes non-overlapping predictions ordered by score, and its metrics', async () => {
  const input = await inputs();
  const out = join(input, '..', 'clean');
  const metrics = join(input, '..', 'metrics.json');
  const result = dsb2018(['postprocess', '--in', input, '--out', out, '--metrics', metrics]);
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual((await readPredictionsManifest(out)).map((e) => [e.id, e.instances]), [['empty', 0], ['img', 2]]);
  const image = await readImagePredictions(out, 'img');
  assert.deepEqual(image.instances.map((i) => i.score), [0.9, 0.6]);
  const [a, b] = image.instances.map((instance) => decodeRle(instance.rle, W, H, 'x'));
  assert.ok(a && b);
  assert.equal(a.reduce((s, v, p) => s + (v & b[p]!), 0), 0, 'no pixel in both');
  assert.equal(b.reduce((s, v) => s + v, 0), 12, 'the lower mask keeps columns 0-2');
  const written = JSON.parse(readFileSync(metrics, 'utf8'));
  assert.equal(written.images, 2);
  assert.equal(written.droppedSmallBefore, 1);
  assert.equal(written.output, 2);
});

test('a bad flag value is an error naming the flag, and nothing is written', async () => {
  const input = await inputs();
  const out = join(input, '..', 'clean');
  const result = dsb2018(['postprocess', '--in', input, '--out', out, '--pieces', 'biggest']);
  assert.equal(result.status, 1);
  assert.match(result.stderr, /flag --pieces: "biggest" is not one of largest, delete, keep/);
  const notBool = dsb2018(['postprocess', '--in', input, '--out', out, '--closing', 'yes']);
  assert.match(notBool.stderr, /flag --closing: "yes" is not true or false/);
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(join(input, '..')).sort(), ['preds']);
});
