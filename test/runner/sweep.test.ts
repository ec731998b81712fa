// `runner sweep` with the real CLI on the fake study pipeline (test/runner/experiments-helpers.ts): experiments
// get their own outs, share unchanged upstream stages through the run-cache, and bad input is a located error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunCache } from '../../cache/run-cache.js';
import { repoRoot } from '../helpers/paths.js';
import { makeWorkspace, runs } from './helpers.js';
import { cli, studyWorkspace } from './experiments-helpers.js';

interface SweepJson {
  experiments: { id: string; name: string; workspace: string; status: string; stages: Record<string, { status: string }>; metrics: Record<string, unknown> }[];
}

function sweepJson(dir: string, args: string[]): SweepJson {
  const result = cli(dir, ['sweep', ...args, '--json']);
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as SweepJson;
}

const count = (dir: string, stage: string): number => runs(dir).filter((name) => name === stage).length;

test('a sweep over a downstream param runs the upstream stages once and leaves the main workspace as it was', async () => {
  const dir = await studyWorkspace();
  assert.equal(cli(dir, ['run', 'pipelines/study.yaml']).status, 0);
  const lock = readFileSync(join(dir, 'pipelines/study.lock'), 'utf8');
  const sweep = sweepJson(dir, ['pipelines/study.yaml', '--grid', 'post.threshold=0.35,0.5,0.7']);
  assert.deepEqual(sweep.experiments.map((e) => e.name), ['baseline', 'post.threshold=0.5', 'post.threshold=0.7'], '0.35 is the baseline: not run twice');
  assert.deepEqual(['prepare', 'train', 'predict'].map((s) => count(dir, s)), [1, 1, 1], 'upstream stages ran only in the main workspace run');
  assert.equal(count(dir, 'evaluate'), 3);
  assert.deepEqual(Object.values(sweep.experiments[0]!.stages).map((s) => s.status), ['restored', 'restored', 'restored', 'restored']);
  assert.deepEqual(Object.values(sweep.experiments[1]!.stages).map((s) => s.status), ['restored', 'restored', 'restored', 'ran']);
  assert.deepEqual(sweep.experiments.map((e) => e.metrics['evaluate.score']), [0.35, 0.5, 0.7]);
  for (const experiment of sweep.experiments) {
    const score = JSON.parse(readFileSync(join(dir, experiment.workspace, 'metrics/eval.json'), 'utf8')).score;
    assert.equal(score, experiment.metrics['evaluate.score'], `${experiment.name} has its own copy of the outs`);
  }
  assert.equal(JSON.parse(readFileSync(join(dir, 'metrics/eval.json'), 'utf8')).score, 0.35, 'the main workspace outs are untouched');
  assert.equal(readFileSync(join(dir, 'pipelines/study.lock'), 'utf8'), lock, 'the main lock file is untouched');
});

test('a stage that failed in an experiment and ran when it was run again costs both runs in its record', () => {
  // The stage fails while the flag file exists (removing it), as an interrupted training would, then succeeds.
  const flag = join(mkdtempSync(join(tmpdir(), 'fail-once-')), 'flag');
  writeFileSync(flag, '');
  const dir = makeWorkspace({
    'p.yaml': `params: {flag: ${JSON.stringify(flag)}}
stages:
  train:
    cmd: [sh, -c, 'if [ -e "$1" ]; then rm "$1"; exit 1; fi; echo "{\\"loss\\": 1}" > m.json', sh, '\${flag}']
    params: [flag]
    metrics: [m.json]
`,
  });
  assert.equal(cli(dir, ['sweep', 'p.yaml']).status, 1, 'the first attempt fails');
  assert.equal(existsSync(flag), false);
  const rerun = cli(dir, ['sweep', 'p.yaml', '--json']);
  assert.equal(rerun.status, 0, rerun.stderr);
  const stage = (JSON.parse(rerun.stdout) as { experiments: { stages: Record<string, { status: string; computeMs?: number; runsMs?: number[] }> }[] }).experiments[0]!.stages['train']!;
  assert.equal(stage.status, 'ran');
  assert.equal(stage.runsMs?.length, 2, 'the failed run and the one that finished');
  const [record] = new RunCache(join(dir, '.runner/cache')).all();
  assert.equal(stage.computeMs, record!.durationMs + stage.runsMs![0]!, 'the run-cache record (the finished run) plus the failed run');
});

test('a sweep file runs its baseline, named experiments and grid with the shared overrides, and a rerun runs nothing', async () => {
  const dir = await studyWorkspace();
  writeFileSync(join(dir, 'pipelines/study.sweep.yaml'), `pipeline: study.yaml
profile: quick
set: {train.lr: 0.002}
experiments:
  no-tta: {predict: {tta: false}}
grid:
  post.threshold: [0.35, 0.5]
`);
  const first = sweepJson(dir, ['pipelines/study.sweep.yaml']);
  assert.deepEqual(first.experiments.map((e) => e.name), ['baseline', 'no-tta', 'post.threshold=0.5']);
  assert.deepEqual(first.experiments.map((e) => e.metrics['train.best_val_loss']), [0.002, 0.002, 0.002], 'set: applies to every experiment');
  assert.equal(count(dir, 'train'), 1, 'training ran once for three experiments');
  assert.equal(count(dir, 'predict'), 2, 'predict ran for tta on and off');
  const history = JSON.parse(readFileSync(join(dir, first.experiments[0]!.workspace, 'models/m/history.json'), 'utf8'));
  assert.equal(history.history.length, 2, 'the quick profile (2 epochs) was applied');
  const before = runs(dir).length;
  const second = sweepJson(dir, ['pipelines/study.sweep.yaml']);
  assert.equal(runs(dir).length, before, 'a rerun of the study runs no stage');
  assert.deepEqual(second.experiments.map((e) => e.id), first.experiments.map((e) => e.id), 'the same params are the same experiments');
  assert.ok(second.experiments.every((e) => Object.values(e.stages).every((s) => s.status === 'fresh')));
});

test('--only runs the named experiments of a sweep file (and the baseline), and an unknown name is an error', async () => {
  const dir = await studyWorkspace();
  writeFileSync(join(dir, 'pipelines/study.sweep.yaml'), `pipeline: study.yaml
experiments:
  no-tta: {predict: {tta: false}}
  strict: {post.threshold: 0.7}
  loose: {post.threshold: 0.2}
grid:
  post.threshold: [0.35, 0.5]
`);
  const chosen = sweepJson(dir, ['pipelines/study.sweep.yaml', '--only', 'strict,loose']);
  assert.deepEqual(chosen.experiments.map((e) => e.name), ['baseline', 'strict', 'loose']);
  const bad = cli(dir, ['sweep', 'pipelines/study.sweep.yaml', '--only', 'strictt']);
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--only strictt: .*has no experiment "strictt" \(did you mean "strict"\?\)/);
});

test('bad --grid syntax or an unknown param is an error naming the flag, and nothing runs', async () => {
  const dir = await studyWorkspace();
  const cases: [string, string][] = [
    ['post.threshold', 'error: --grid post.threshold: expected KEY=V1,V2,... (e.g. --grid postprocess.threshold=0.35,0.5)\n'],
    ['post.treshold=0.3,0.5', 'error: --grid post.treshold=0.3,0.5: no param "post.treshold" in pipelines/study.yaml (did you mean "post.threshold"?)\n'],
  ];
  for (const [grid, message] of cases) {
    const result = cli(dir, ['sweep', 'pipelines/study.yaml', '--grid', grid]);
    assert.equal(result.status, 2, grid);
    assert.equal(result.stderr, message);
  }
  assert.deepEqual(runs(dir), []);
});

test('an unknown param or key in a sweep file is reported at its place in the file', async () => {
  const dir = await studyWorkspace();
  writeFileSync(join(dir, 'pipelines/bad.sweep.yaml'), `pipeline: study.yaml
experiments:
  no-tta: {predict.ta: false}
`);
  const result = cli(dir, ['sweep', 'pipelines/bad.sweep.yaml']);
  assert.equal(result.status, 2);
  assert.equal(result.stderr, [
    'pipelines/bad.sweep.yaml:3:12 error: pipelines/bad.sweep.yaml: param "predict.ta": no param "predict.ta" in pipelines/study.yaml (did you mean "predict.tta"?)',
    '  3 |   no-tta: {predict.ta: false}',
    '    |            ^^^^^^^^^^',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'pipelines/bad.sweep.yaml'), 'pipeline: study.yaml\ngrids: {post.threshold: [1]}\n');
  assert.match(cli(dir, ['sweep', 'pipelines/bad.sweep.yaml']).stderr, /^pipelines\/bad\.sweep\.yaml:2:1 error: unknown key "grids" in the sweep file \(did you mean "grid"\?\)/);
  assert.deepEqual(runs(dir), []);
});

test('the DSB2018 ablation study names only params the pipeline has, and each experiment differs from the baseline', async () => {
  const { loadSweepFile, locateParamKey } = await import('../../runner/experiments/sweep-file.js');
  const { planSweep } = await import('../../runner/experiments/sweep.js');
  const file = join(repoRoot, 'pipelines/dsb2018.sweep.yaml');
  const sweep = loadSweepFile(file);
  const plan = await planSweep({
    pipelineFile: sweep.pipeline, profile: 'quick', shared: sweep.shared, baseline: sweep.baseline, experiments: sweep.experiments,
    grid: sweep.grid, locateKey: (key) => locateParamKey(sweep, key), describeKey: (key) => `param "${key}"`,
  });
  assert.deepEqual(plan.experiments.map((e) => e.name), ['baseline', 'no-tta', 'mask-threshold-0.5', 'no-scale-down-retry', 'no-closing', 'pieces-delete', 'no-external-no-mosaics']);
  assert.deepEqual(plan.duplicates, [], 'every ablation changes an effective param');
});

test('the cpu profile\'s choices study names only params the pipeline has, and each experiment differs from the profile', async () => {
  const { loadSweepFile, locateParamKey } = await import('../../runner/experiments/sweep-file.js');
  const { planSweep } = await import('../../runner/experiments/sweep.js');
  const sweep = loadSweepFile(join(repoRoot, 'pipelines/dsb2018-cpu.sweep.yaml'));
  const plan = await planSweep({
    pipelineFile: sweep.pipeline, profile: sweep.profile ?? 'cpu', shared: sweep.shared, baseline: sweep.baseline, experiments: sweep.experiments,
    grid: sweep.grid, locateKey: (key) => locateParamKey(sweep, key), describeKey: (key) => `param "${key}"`,
  });
  assert.deepEqual(plan.experiments.map((e) => e.name), ['baseline', 'whole-images-at-256', 'small-backbone', 'raw-contrast', 'gt-cap-64', 'colour-augmentation', 'dark-background', 'held-out-he-with-colour', 'held-out-he-without-colour', 'no-small-nuclei-zoom', 'small-nuclei-upscale']);
  assert.deepEqual(plan.duplicates, [], 'every experiment changes an effective param');
});
