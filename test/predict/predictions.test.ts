import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PredictionsWriter,
  predictionsFormat,
  readImagePredictions,
  readPredictionsManifest,
  type ImagePredictions,
} from '../../stages/predict/predictions.js';
import { StageError } from '../../stages/stage-error.js';

const image: ImagePredictions = {
  id: 'img-1',
  width: 4,
  height: 3,
  instances: [
    { score: 0.9, box: [0, 0, 2, 2], rle: [1, 2, 4, 2] },
    { score: 0.8, box: [0, 1, 2, 3], rle: [4, 2] },
  ],
};

async function written(images: ImagePredictions[]): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'predictions-')), 'preds');
  const writer = new PredictionsWriter(dir);
  for (const one of images) await writer.add(one);
  await writer.finish();
  return dir;
}

test('predictions read back as written, with a manifest sorted by id', async () => {
  const dir = await written([{ ...image, id: 'b' }, image]);
  const manifest = await readPredictionsManifest(dir);
  assert.deepEqual(manifest, [
    { id: 'b', width: 4, height: 3, instances: 2 },
    { id: 'img-1', width: 4, height: 3, instances: 2 },
  ]);
  assert.deepEqual(await readImagePredictions(dir, 'img-1', manifest[1]), image);
  assert.equal(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).format, predictionsFormat);
});

test('an image with no instances is a valid entry', async () => {
  const dir = await written([{ id: 'none', width: 2, height: 2, instances: [] }]);
  assert.deepEqual((await readImagePredictions(dir, 'none')).instances, []);
});

test('a bad run-length encoding names the file and the instance', async () => {
  const dir = await written([image]);
  const file = join(dir, 'img-1.json');
  const record = JSON.parse(readFileSync(file, 'utf8'));
  record.instances[1].rle = [4, 2, 5, 1];
  writeFileSync(file, JSON.stringify(record));
  await assert.rejects(readImagePredictions(dir, 'img-1'), (error: unknown) =>
    error instanceof StageError && error.message.startsWith(`${file}: instances[1]: pair 2 (5 1)`),
  );
});

test('a file that disagrees with the manifest is an error naming both sizes', async () => {
  const dir = await written([image]);
  const manifest = await readPredictionsManifest(dir);
  await assert.rejects(readImagePredictions(dir, 'img-1', { ...manifest[0]!, instances: 5 }), /with 2 instances, the manifest says 4x3 with 5/);
});

test('a malformed manifest, a missing file and an unsafe id are clear errors', async () => {
  const dir = await written([image]);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ format: predictionsFormat, images: [{ id: '../x', width: 1, height: 1, instances: 0 }] }));
  await assert.rejects(readPredictionsManifest(dir), /manifest\.json: images\[0\] is not/);
  await assert.rejects(readImagePredictions(dir, 'absent'), /absent\.json: not found/);
  await assert.rejects(readPredictionsManifest(join(dir, 'nowhere')), /manifest\.json: not found/);
  const writer = new PredictionsWriter(join(dir, 'other'));
  await assert.rejects(writer.add({ ...image, id: '../evil' }), /not a safe file name/);
});
