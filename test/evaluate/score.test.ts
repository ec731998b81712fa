import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { scoreFiles } from '../../stages/evaluate/score.js';
import { submissionCsv } from '../../stages/evaluate/submission.js';
import { stagesCommand } from '../helpers/paths.js';

// Two 4x5 (height 4, width 5) images. Image "a": nuclei = column 0 (pixels 1-4) and column 2 rows 0-1 (9-10).
// Image "b" (Private): one nucleus, pixels 1-8 (columns 0 and 1).
const solution = [
  'ImageId,EncodedPixels,Height,Width,Usage',
  'a,1 4,4,5,Public',
  'a,9 2,4,5,Public',
  'b,1 8,4,5,Private',
  'c,1 1,4,5,Ignored',
].join('\n');

function files(submission: string): { dir: string; sub: string; sol: string } {
  const dir = mkdtempSync(join(tmpdir(), 'score-'));
  writeFileSync(join(dir, 'solution.csv'), solution);
  writeFileSync(join(dir, 'sub.csv'), submission);
  return { dir, sub: join(dir, 'sub.csv'), sol: join(dir, 'solution.csv') };
}

test('a submission equal to the solution scores 1', async () => {
  const { sub, sol } = files('ImageId,EncodedPixels\na,9 2\na,1 4\nb,1 8\n');
  const report = await scoreFiles(sub, sol);
  assert.equal(report.score, 1);
  assert.deepEqual(report.usage, { Private: 1, Public: 1 });
});

test('partial predictions score per image and per Usage, and an empty row means no nucleus', async () => {
  // a: one exact nucleus of two -> 1/2 at every threshold; b: no nucleus predicted -> 0
  const { sub, sol } = files('ImageId,EncodedPixels\na,1 4\nb,\n');
  const report = await scoreFiles(sub, sol);
  assert.deepEqual(
    report.images.map(({ id, score, predicted }) => ({ id, score, predicted })),
    [
      { id: 'a', score: 0.5, predicted: 1 },
      { id: 'b', score: 0, predicted: 0 },
    ],
  );
  assert.equal(report.score, 0.25);
  assert.deepEqual(report.usage, { Private: 0, Public: 0.5 });
});

test('a malformed RLE in the submission is an error naming file:line', async () => {
  const { sub, sol } = files('ImageId,EncodedPixels\na,1 4\na,9 2 4\nb,1 8\n');
  await assert.rejects(scoreFiles(sub, sol), (error: Error) => error.message.startsWith(`${sub}:3: the run-length encoding has 3 numbers`));
  const beyond = files('ImageId,EncodedPixels\na,1 4\nb,19 3\n');
  await assert.rejects(scoreFiles(beyond.sub, beyond.sol), new RegExp(`${beyond.sub}:3: pair 1 \\(19 3\\): ends at pixel 21`));
});

test('a submission missing an image or naming an unknown one is refused', async () => {
  const missing = files('ImageId,EncodedPixels\na,1 4\n');
  await assert.rejects(scoreFiles(missing.sub, missing.sol), /no row for image "b" \(an image with no nucleus needs one row/);
  const unknown = files('ImageId,EncodedPixels\na,1 4\nb,\nzzz,1 1\n');
  await assert.rejects(scoreFiles(unknown.sub, unknown.sol), new RegExp(`${unknown.sub}:4: image "zzz" is not in the solution`));
});

test('a solution without the Height column is refused naming the header line', async () => {
  const { dir, sub } = files('ImageId,EncodedPixels\n');
  writeFileSync(join(dir, 'bad.csv'), 'ImageId,EncodedPixels,Width\na,1 1,5\n');
  await assert.rejects(scoreFiles(sub, join(dir, 'bad.csv')), /bad\.csv:1: the header has no column "Height"/);
});

test('submissionCsv writes one row per nucleus and an empty row for an image without any', () => {
  assert.equal(submissionCsv([{ id: 'a', rles: [[1, 4], [9, 2]] }, { id: 'b', rles: [] }]), 'ImageId,EncodedPixels\na,1 4\na,9 2\nb,\n');
});

test('the score command prints the score, or JSON, and exits 1 with a located error on bad input', () => {
  const { dir, sub, sol } = files('ImageId,EncodedPixels\n"a","1 4"\nb,1 8\n');
  const [node, ...args] = stagesCommand;
  const text = execFileSync(node!, [...args, 'score', '--submission', sub, '--solution', sol, '--metrics', join(dir, 'm.json')], { encoding: 'utf8' });
  assert.equal(text, 'score: 0.750000\n');
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'm.json'), 'utf8')), { score: 0.75, score_private: 1, score_public: 0.5 });
  const json = JSON.parse(execFileSync(node!, [...args, 'score', '--submission', sub, '--solution', sol, '--json'], { encoding: 'utf8' }));
  assert.equal(json.score, 0.75);
  assert.equal(json.images.length, 2);
  writeFileSync(sub, 'ImageId,EncodedPixels\na,0 4\nb,\n');
  const failed = spawnSync(node!, [...args, 'score', '--submission', sub, '--solution', sol], { encoding: 'utf8' });
  assert.equal(failed.status, 1);
  assert.match(failed.stderr, new RegExp(`dsb2018 score: error: ${sub}:2: pair 1 \\(0 4\\): the start must be`));
});
