import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StageError } from '../../stages/stage-error.js';
import { writeAtomically } from '../../stages/write-atomically.js';
import {
  DatasetWriter,
  readIdList,
  readImage,
  readLabels,
  readManifest,
  readSample,
  writeImage,
  writeLabels,
  type Image8,
  type LabelMap,
  type SampleInfo,
} from '../../stages/imaging/dataset.js';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dataset-test-'));
  test.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function ramp(width: number, height: number, channels: 1 | 3 | 4): Image8 {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 256;
  return { width, height, channels, data };
}

function info(id: string, width: number, height: number): SampleInfo {
  return { id, width, height, channels: 3, nuclei: 0, overlapPixels: 0, source: 'test' };
}

test('images of 1, 3 and 4 channels survive a PNG round trip byte for byte', async () => {
  const dir = tempDir();
  for (const channels of [1, 3, 4] as const) {
    const image = ramp(7, 5, channels);
    const file = join(dir, `ramp${channels}.png`);
    await writeImage(file, image);
    const back = await readImage(file);
    assert.equal(back.channels, channels);
    assert.equal(back.width, 7);
    assert.equal(back.height, 5);
    assert.deepEqual([...back.data], [...image.data]);
  }
});

test('label maps keep values above 255 through a 16-bit PNG round trip', async () => {
  const dir = tempDir();
  const data = Uint16Array.from([0, 1, 2, 255, 256, 300, 1000, 65535]);
  const labels: LabelMap = { width: 4, height: 2, data, count: 65535 };
  const file = join(dir, 'labels.png');
  await writeLabels(file, labels);
  const back = await readLabels(file);
  assert.equal(back.width, 4);
  assert.equal(back.height, 2);
  assert.equal(back.count, 65535);
  assert.deepEqual([...back.data], [...data]);
});

test('a truncated PNG is an error naming the file', async () => {
  const dir = tempDir();
  const file = join(dir, 'whole.png');
  await writeImage(file, ramp(64, 64, 3));
  const truncated = join(dir, 'truncated.png');
  const bytes = readFileSync(file);
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  await assert.rejects(readImage(truncated), (error: Error) => {
    assert.ok(error instanceof StageError);
    assert.match(error.message, /truncated\.png: cannot decode image/);
    return true;
  });
  await assert.rejects(readLabels(join(dir, 'absent.png')), /absent\.png: cannot decode label map/);
});

test('an 8-bit RGB file is refused as a label map', async () => {
  const dir = tempDir();
  const file = join(dir, 'rgb.png');
  await writeImage(file, ramp(4, 4, 3));
  await assert.rejects(readLabels(file), /rgb\.png: a label map is a 16-bit single-channel PNG, this file has 3 channel\(s\) of uchar/);
});

test('a dataset written atomically reads back sorted, sample by sample', async () => {
  const root = tempDir();
  const out = join(root, 'compact');
  const labels: LabelMap = { width: 3, height: 2, data: Uint16Array.from([0, 1, 1, 2, 0, 2]), count: 2 };
  await writeAtomically(out, async (tmp) => {
    const writer = new DatasetWriter(tmp);
    await writer.add({ info: info('b', 3, 2), image: ramp(3, 2, 4), labels });
    await writer.add({ info: info('a', 3, 2), image: ramp(3, 2, 3), labels });
    const samples = await writer.finish();
    assert.deepEqual(samples.map((s) => s.id), ['a', 'b']);
  });
  assert.deepEqual(readdirSync(root), ['compact']);
  const manifest = await readManifest(out);
  assert.deepEqual(manifest.map((s) => [s.id, s.channels, s.nuclei]), [['a', 3, 2], ['b', 4, 2]]);
  const sample = await readSample(out, 'b');
  assert.equal(sample.image.channels, 4);
  assert.deepEqual([...sample.labels.data], [0, 1, 1, 2, 0, 2]);
});

test('a sample whose files disagree with the manifest on size is an error naming the file', async () => {
  const dir = tempDir();
  const labels: LabelMap = { width: 2, height: 2, data: new Uint16Array(4), count: 0 };
  const writer = new DatasetWriter(dir);
  await writer.add({ info: info('x', 2, 2), image: ramp(2, 2, 3), labels });
  await writer.finish();
  await writeLabels(join(dir, 'labels', 'x.png'), { width: 3, height: 2, data: new Uint16Array(6), count: 0 });
  await assert.rejects(readSample(dir, 'x'), /labels[/\\]x\.png: is 3x2, the manifest says 2x2/);
  await assert.rejects(readSample(dir, 'nope'), /no sample with id "nope"/);
});

test('a missing or malformed manifest is an error naming the file', async () => {
  const dir = tempDir();
  await assert.rejects(readManifest(dir), /manifest\.json: not found/);
  writeFileSync(join(dir, 'manifest.json'), '{"format": "dsb2018-compact/1", "samples": [');
  await assert.rejects(readManifest(dir), /manifest\.json: not valid JSON/);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ format: 'dsb2018-compact/1', samples: [{ id: 'a' }] }));
  await assert.rejects(readManifest(dir), /manifest\.json: samples\[0\] is not a valid sample record/);
});

test('the writer refuses a repeated id and an id that is not a safe file name', async () => {
  const dir = tempDir();
  const writer = new DatasetWriter(dir);
  const labels: LabelMap = { width: 1, height: 1, data: new Uint16Array(1), count: 0 };
  await writer.add({ info: info('one', 1, 1), image: ramp(1, 1, 3), labels });
  await assert.rejects(writer.add({ info: info('one', 1, 1), image: ramp(1, 1, 3), labels }), /"one" appears twice/);
  await assert.rejects(writer.add({ info: info('../escape', 1, 1), image: ramp(1, 1, 3), labels }), /not a safe file name/);
  assert.equal(existsSync(join(dir, '..', 'escape.png')), false);
});

test('id lists ignore blank lines and a missing list names its file', async () => {
  const dir = tempDir();
  writeFileSync(join(dir, 'train.txt'), 'a\r\nb\n\n c \n');
  assert.deepEqual(await readIdList(join(dir, 'train.txt')), ['a', 'b', 'c']);
  await assert.rejects(readIdList(join(dir, 'val.txt')), /val\.txt: cannot read id list/);
});
