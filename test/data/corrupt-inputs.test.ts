// Corrupt inputs to the data stages: each must fail with a StageError naming the file (exit 1, one line, no
// stack trace) and leave no output behind — never carry the damage on with exit 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { stagesCommand } from '../helpers/paths.js';
import { DatasetWriter, imagePath, labelsPath, writeLabels, type LabelMap } from '../../stages/imaging/dataset.js';
import { parseAnnotations } from '../../stages/data/external-annotations.js';
import { grid } from '../imaging/grid.js';
import { tempDir, writeDsbImage } from './dsb-fixture.js';

async function dsb(args: string[]) {
  return execa(stagesCommand[0]!, [...stagesCommand.slice(1), ...args], { reject: false });
}

function labelsOf(rows: string[], count: number): LabelMap {
  const { data, width, height } = grid(rows);
  return { width, height, data: Uint16Array.from(data), count };
}

/** A two-sample compact dataset of 4x4 RGB images. */
async function dataset(dir: string): Promise<void> {
  const writer = new DatasetWriter(dir);
  for (const id of ['a', 'b']) {
    await writer.add({
      info: { id, width: 4, height: 4, channels: 3, nuclei: 1, overlapPixels: 0, source: 'test' },
      image: { width: 4, height: 4, channels: 3, data: new Uint8Array(48).map((_, i) => (i * 5) % 256) },
      labels: labelsOf(['11..', '11..', '....', '....'], 1),
    });
  }
  await writer.finish();
}

type Damage = (dir: string) => Promise<void> | void;

const truncate = (file: string) => writeFileSync(file, readFileSync(file).subarray(0, Math.floor(readFileSync(file).length / 2)));
const damages: Record<string, { labels: Damage; image: Damage }> = {
  truncated: { labels: (d) => truncate(labelsPath(d, 'b')), image: (d) => truncate(imagePath(d, 'b')) },
  missing: { labels: (d) => rmSync(labelsPath(d, 'b')), image: (d) => rmSync(imagePath(d, 'b')) },
  'wrong-size': {
    labels: (d) => writeLabels(labelsPath(d, 'b'), labelsOf(['1..', '...', '...'], 1)),
    image: () => {},
  },
};

async function expectFailure(stage: string, damage: Damage, file: RegExp, extra: string[] = []): Promise<void> {
  const root = tempDir();
  const input = join(root, 'in');
  await dataset(input);
  await damage(input);
  const out = join(root, 'out');
  const result = await dsb([stage, '--in', input, '--out', out, ...extra]);
  assert.equal(result.exitCode, 1, `${stage}: ${result.stdout}${result.stderr}`);
  assert.match(result.stderr, new RegExp(`^dsb2018 ${stage}: error: .*${file.source}`, 'm'), stage);
  assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(result.stderr.split('\n').filter((line) => line.includes('error')).length, 1, 'one line');
  assert.ok(!existsSync(out), 'nothing written');
}

test('strip-alpha refuses a truncated, missing or wrong-size label map (it copies them byte for byte)', async () => {
  await expectFailure('strip-alpha', damages.truncated!.labels, /labels\/b\.png: cannot decode/);
  await expectFailure('strip-alpha', damages.missing!.labels, /labels\/b\.png: missing \(the label map of sample "b"/);
  await expectFailure('strip-alpha', damages['wrong-size']!.labels, /labels\/b\.png: is 3x3, the manifest says 4x4/);
});

test('fill-holes refuses a truncated or missing image (it copies images byte for byte)', async () => {
  await expectFailure('fill-holes', damages.truncated!.image, /images\/b\.png: cannot decode/);
  await expectFailure('fill-holes', damages.missing!.image, /images\/b\.png: missing \(the image of sample "b"/);
});

test('mosaic refuses a damaged label map even of an image that becomes no tile', async () => {
  await expectFailure('mosaic', damages.truncated!.labels, /labels\/b\.png: cannot decode/);
  await expectFailure('mosaic', damages.missing!.labels, /labels\/b\.png: missing/);
  await expectFailure('mosaic', damages['wrong-size']!.labels, /labels\/b\.png: is 3x3, the manifest says 4x4/);
});

test('fix-masks refuses an image with an empty masks folder', async () => {
  const root = tempDir();
  const train = join(root, 'train');
  await writeDsbImage(train, 'good', 4, 4, { 'm1.png': ['11..', '11..', '....', '....'] });
  await writeDsbImage(train, 'empty', 4, 4, {});
  mkdirSync(join(train, 'empty', 'masks'), { recursive: true });
  const out = join(root, 'out');
  const result = await dsb(['fix-masks', '--in', train, '--out', out]);
  assert.equal(result.exitCode, 1, result.stderr);
  assert.match(result.stderr, /^dsb2018 fix-masks: error: .*empty\/masks: no mask PNG in the masks folder/m);
  assert.ok(!existsSync(out));
});

test('external: an empty XML is reported at 1:1, a truncated one where it stops', () => {
  assert.throws(() => parseAnnotations('e.xml', ''), /^StageError: e\.xml:1:1: the file is empty/);
  assert.throws(() => parseAnnotations('e.xml', '  \n'), /e\.xml:1:1: the file is empty/);
  const whole = '<Annotations>\n <Annotation>\n  <Regions>\n   <Region Id="1">\n    <Vertices><Vertex X="1" Y="2"/></Vertices>\n   </Region>\n  </Regions>\n </Annotation>\n</Annotations>\n';
  const half = whole.slice(0, whole.indexOf('</Region>'));
  assert.throws(() => parseAnnotations('h.xml', half), (error: Error) => {
    assert.equal(error.message, 'h.xml:6:4: not well-formed XML: the file ends inside <Annotations> <Annotation> <Regions> <Region> (unclosed): is it truncated?');
    return true;
  });
  assert.throws(() => parseAnnotations('m.xml', '<a>\n<b x="1">\n</a>'), /m\.xml:3:1: not well-formed XML/);
  assert.doesNotMatch(String((() => { try { parseAnnotations('u.xml', 'hello'); } catch (e) { return e; } })()), /undefined/);
});
