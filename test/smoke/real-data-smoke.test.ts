// The whole model-side chain on 4 real DSB2018 images, through the real CLI, as a pipeline would run it:
// fix-masks -> strip-alpha -> fill-holes -> train (small model, 3 steps) -> predict -> postprocess -> evaluate.
// Three training steps learn nothing useful; the test checks that every stage runs on real data and hands the
// next one a valid output, not the score.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedData, stagesCommand } from '../helpers/paths.js';
import { readManifest } from '../../stages/imaging/dataset.js';
import { readImagePredictions, readPredictionsManifest } from '../../stages/predict/predictions.js';

const train = join(sharedData, 'stage1_train');
const fixes = join(sharedData, 'stage1_train_fixes');
// Small images with few nuclei (one 320x256, one with community-fixed masks), so the chain stays fast.
const ids = [
  '01d44a26f6680c42ba94c9bc6339228579a95d0e2695b149b7cc0c9592b21baf',
  '03b9306f44e9b8951461623dcbd615550cdcf36ea93b203f2c8fa58ed1dffcbe',
  '07761fa39f60dc37022dbbe8d8694595fd5b77ceb2af2a2724768c8e524d6770',
  '0b2e702f90aee4fff2bc6e4326308d50cf04701082e718d4f831c8959fbcda93',
];
const present = ids.every((id) => existsSync(join(train, id))) && existsSync(fixes);

function dsb2018(args: string[]): void {
  const [node, ...rest] = stagesCommand;
  const result = spawnSync(node!, [...rest, ...args], { encoding: 'utf8', env: { ...process.env, RUNNER_EVENTS: '' } });
  assert.equal(result.status, 0, `dsb2018 ${args[0]} failed:\n${result.stderr}`);
}

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));
const inUnit = (value: unknown): boolean => typeof value === 'number' && value >= 0 && value <= 1;

test(
  'the real CLI chain from DSB masks to a score runs on 4 real images: fix-masks, strip-alpha, fill-holes, train, predict, postprocess, evaluate',
  { skip: present ? false : `real DSB2018 data not found at ${sharedData}` },
  async () => {
    const work = mkdtempSync(join(tmpdir(), 'real-smoke-'));
    try {
      // A DSB-layout folder of links to the 4 image folders: no data is copied.
      const input = join(work, 'stage1_train');
      mkdirSync(input);
      for (const id of ids) symlinkSync(join(train, id), join(input, id), 'dir');
      const at = (name: string) => join(work, name);

      dsb2018(['fix-masks', '--in', input, '--fixes', fixes, '--out', at('fixed')]);
      dsb2018(['strip-alpha', '--in', at('fixed'), '--out', at('rgb')]);
      dsb2018(['fill-holes', '--in', at('rgb'), '--out', at('filled')]);
      const samples = await readManifest(at('filled'));
      assert.deepEqual(samples.map((s) => s.id), ids);
      assert.ok(samples.every((s) => s.channels === 3 && s.nuclei > 0));

      dsb2018([
        'train', '--data', at('filled'), '--model', '{"preset":"small"}', '--epochs', '1', '--steps-per-epoch', '3',
        '--out', at('checkpoint'), '--metrics', at('train.json'),
      ]);
      assert.ok(existsSync(join(at('checkpoint'), 'model.json')));
      assert.ok(Number.isFinite(readJson(at('train.json')).final_train_loss));

      dsb2018(['predict', '--checkpoint', at('checkpoint'), '--data', at('filled'), '--out', at('raw'), '--metrics', at('predict.json')]);
      const predicted = readJson(at('predict.json'));
      assert.equal(predicted.images, 4);
      assert.ok(predicted.seconds_per_image > 0 && Number.isInteger(predicted.instances) && Number.isInteger(predicted.retries));

      dsb2018(['postprocess', '--in', at('raw'), '--out', at('clean')]);
      const manifest = await readPredictionsManifest(at('clean'));
      assert.deepEqual(manifest.map((e) => [e.id, e.width, e.height]), samples.map((s) => [s.id, s.width, s.height]));
      for (const entry of manifest) await readImagePredictions(at('clean'), entry.id, entry);

      dsb2018(['evaluate', '--pred', at('clean'), '--truth', at('filled'), '--metrics', at('evaluate.json'), '--overlays', at('overlays'), '--overlay-count', '2', '--submission', at('submission.csv')]);
      const report = readJson(at('evaluate.json'));
      assert.equal(report.images, 4);
      assert.ok(inUnit(report.score), `score ${report.score}`);
      for (const image of report.perImage) assert.ok(inUnit(image.score) && image.truth > 0, JSON.stringify(image));
      assert.ok(existsSync(join(at('overlays'), 'index.html')));
      assert.match(readFileSync(at('submission.csv'), 'utf8'), /^ImageId,EncodedPixels\n/);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  },
);
