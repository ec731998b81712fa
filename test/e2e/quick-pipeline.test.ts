// pipelines/dsb2018.yaml end to end on the quick profile, shrunk by --set so CI runs it in about a minute:
// every stage's outputs and metrics, then a second run that executes nothing, then a post-processing ablation
// that reruns only the stages downstream of that param.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runnerCommand } from '../helpers/paths.js';

const shrink = [
  '--profile', 'quick',
  '--set', 'synth.n=8', '--set', 'split.val_fraction=0.25',
  '--set', 'model.config.image.size=64',
  '--set', 'train.steps_per_epoch=2', '--set', 'train.max_val=2',
  '--set', 'phase1.epochs=1', '--set', 'phase2.epochs=1', '--set', 'phase3.epochs=1',
];

interface Summary { stages: Record<string, { status: string }> }

function runner(workspace: string, args: string[]): { status: number | null; summary: Summary; stderr: string } {
  const [node, ...prefix] = runnerCommand;
  const result = spawnSync(node!, [...prefix, ...args, '--json'], { cwd: workspace, encoding: 'utf8', env: { ...process.env, CI: '1' } });
  let summary: Summary = { stages: {} };
  try {
    summary = JSON.parse(result.stdout) as Summary;
  } catch {
    // reported by the status assertion below
  }
  return { status: result.status, summary, stderr: result.stderr };
}

/** A workspace whose code and packages are the repository's (symlinked) and whose build/ is its own. */
function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dsb2018-e2e-'));
  for (const name of ['bin', 'stages', 'node_modules', 'package.json', 'tsconfig.json']) {
    symlinkSync(join(repoRoot, name), join(dir, name));
  }
  // A copy, not a link: the lock file is written beside the pipeline file.
  mkdirSync(join(dir, 'pipelines'));
  copyFileSync(join(repoRoot, 'pipelines/dsb2018.yaml'), join(dir, 'pipelines/dsb2018.yaml'));
  return dir;
}

const statuses = (summary: Summary): Record<string, string> =>
  Object.fromEntries(Object.entries(summary.stages).map(([name, s]) => [name, s.status]));

test('the quick profile runs every stage, then runs nothing, then reruns only what a post-processing param feeds', { timeout: 15 * 60_000 }, () => {
  const dir = workspace();
  const first = runner(dir, ['run', 'pipelines/dsb2018.yaml', ...shrink]);
  assert.equal(first.status, 0, first.stderr.slice(-3000));
  const stages = ['synth', 'fix-masks', 'strip-alpha', 'fill-holes', 'split', 'external', 'mosaic', 'train-phase1', 'train-phase2',
    'train-phase3', 'predict', 'postprocess', 'evaluate', 'predict-test', 'postprocess-test', 'submission'];
  assert.deepEqual(Object.keys(first.summary.stages).sort(), [...stages].sort());
  assert.ok(Object.values(first.summary.stages).every((s) => s.status === 'ran'), JSON.stringify(statuses(first.summary)));

  const build = join(dir, 'build/dsb2018');
  const json = (file: string) => JSON.parse(readFileSync(join(build, file), 'utf8'));
  assert.equal(json('prepared/manifest.json').samples.length, 8);
  assert.equal(json('reports/split.json').val, 2);
  for (const phase of ['phase1', 'phase2', 'phase3']) {
    assert.ok(existsSync(join(build, 'models', phase, 'weights.bin')), phase);
    assert.ok(Number.isFinite(json(`reports/${phase}.json`).best_val_loss), phase);
    assert.ok(existsSync(join(build, 'models', phase, 'loss-curve.png')), phase);
  }
  assert.equal(json('predictions/val/manifest.json').images.length, 2);
  const evaluation = json('reports/evaluate.json');
  assert.ok(evaluation.score >= 0 && evaluation.score <= 1, `score ${evaluation.score}`);
  assert.equal(evaluation.images, 2);
  assert.ok(existsSync(join(build, 'overlays/index.html')));
  assert.match(readFileSync(join(build, 'submission.csv'), 'utf8'), /^ImageId,EncodedPixels/);
  // No stage-1 test images here (the quick profile's data root is absent): an empty submission and overlay index.
  assert.deepEqual(json('test-overlays/index.json'), []);

  const second = runner(dir, ['run', 'pipelines/dsb2018.yaml', ...shrink]);
  assert.equal(second.status, 0, second.stderr.slice(-3000));
  assert.ok(Object.values(second.summary.stages).every((s) => s.status === 'fresh' || s.status === 'restored'), JSON.stringify(statuses(second.summary)));

  const third = runner(dir, ['run', 'pipelines/dsb2018.yaml', ...shrink, '--set', 'postprocess.pieces=delete']);
  assert.equal(third.status, 0, third.stderr.slice(-3000));
  const ran = Object.entries(statuses(third.summary)).filter(([, status]) => status === 'ran').map(([name]) => name).sort();
  // submission stays fresh: the quick profile has no stage-1 test images, so postprocess-test's output is the
  // same empty set and nothing downstream of it changes.
  assert.deepEqual(ran, ['evaluate', 'postprocess', 'postprocess-test']);
  assert.equal(third.summary.stages['predict']!.status, 'fresh');
  assert.equal(third.summary.stages['submission']!.status, 'fresh');
});
