// `runner compare`: hand-made experiment records with known metrics, then the real CLI on a sweep.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareExperiments, metricGoal } from '../../runner/experiments/compare.js';
import { formatTable } from '../../runner/experiments/compare-format.js';
import type { ExperimentRecord } from '../../runner/experiments/record.js';
import { cli, studyWorkspace } from './experiments-helpers.js';

function record(id: string, name: string, params: Record<string, unknown>, metrics: Record<string, unknown>): ExperimentRecord {
  return {
    schema: 1, id, name, pipeline: 'p.yaml', profile: null, overrides: {}, params, paramsDigest: id, workspace: `.runner/exps/${id}`,
    status: 'ok', createdAt: '2026-01-01T00:00:00Z', finishedAt: '2026-01-01T00:00:01Z', durationMs: 1000, stages: {}, metrics, plots: [], images: [],
  };
}

const RECORDS = [
  record('aaaaaaaaaa', 'baseline', { 'post.threshold': 0.35, 'train.lr': 1e-4 }, { 'evaluate.score': 0.5, 'train.best_val_loss': 0.8, 'evaluate.note': 'x' }),
  record('bbbbbbbbbb', 'thr=0.5', { 'post.threshold': 0.5, 'train.lr': 1e-4 }, { 'evaluate.score': 0.45, 'train.best_val_loss': 0.8 }),
  record('cccccccccc', 'no-tta', { 'post.threshold': 0.35, 'train.lr': 1e-4, 'predict.tta': false }, { 'evaluate.score': 0.52, 'train.best_val_loss': 0.7 }),
];

test('only the params that differ are shown, and deltas are taken against the baseline', () => {
  const comparison = compareExperiments(RECORDS, 'aaaaaaaaaa');
  assert.deepEqual(comparison.params, ['post.threshold', 'predict.tta'], 'train.lr is the same everywhere');
  assert.deepEqual(comparison.experiments[1]!.params, { 'post.threshold': 0.5, 'predict.tta': null });
  const score = comparison.experiments.map((e) => e.metrics['evaluate.score']!);
  assert.deepEqual(score.map((c) => c.delta !== undefined ? Number(c.delta.toFixed(6)) : undefined), [0, -0.05, 0.02]);
  assert.deepEqual(comparison.experiments[0]!.metrics['evaluate.note'], { value: 'x' }, 'a text metric has no delta');
});

test('the best value is the highest score and the lowest loss, and a tie everywhere marks nothing', () => {
  assert.equal(metricGoal('evaluate.score'), 'max');
  assert.equal(metricGoal('train.best_val_loss'), 'min');
  assert.equal(metricGoal('predict.duration_ms'), 'min');
  const comparison = compareExperiments(RECORDS, 'aaaaaaaaaa');
  assert.deepEqual(comparison.metrics.map((m) => [m.name, m.goal, m.best]), [
    ['evaluate.score', 'max', ['cccccccccc']],
    ['train.best_val_loss', 'min', ['cccccccccc']],
    ['evaluate.note', 'max', undefined],
  ]);
  const tie = compareExperiments(RECORDS.slice(0, 2), 'aaaaaaaaaa');
  assert.equal(tie.metrics.find((m) => m.name === 'train.best_val_loss')!.best, undefined);
});

test('--metric patterns and --changed narrow the metrics to those asked for', () => {
  const byPattern = compareExperiments(RECORDS, 'aaaaaaaaaa', { metricPatterns: ['evaluate.*'] });
  assert.deepEqual(byPattern.metrics.map((m) => m.name), ['evaluate.score', 'evaluate.note']);
  const exact = compareExperiments(RECORDS, 'aaaaaaaaaa', { metricPatterns: ['train.best_val_loss'] });
  assert.deepEqual(exact.metrics.map((m) => m.name), ['train.best_val_loss']);
  const changed = compareExperiments(RECORDS.slice(0, 2), 'aaaaaaaaaa', { changedOnly: true });
  assert.deepEqual(changed.metrics.map((m) => m.name), ['evaluate.score', 'evaluate.note'], 'the loss is 0.8 in both');
});

test('the text table lines up one column per experiment with deltas and a star on the best', () => {
  const table = formatTable(compareExperiments(RECORDS.slice(0, 2), 'aaaaaaaaaa'));
  assert.equal(table, [
    'experiment                             baseline (baseline)  thr=0.5',
    'id                                     aaaaaaaaaa           bbbbbbbbbb',
    '-------------------------------------  -------------------  ------------',
    'post.threshold                         0.35                 0.5',
    '-------------------------------------  -------------------  ------------',
    'evaluate.score (higher is better)      0.5 *                0.45 (-0.05)',
    'train.best_val_loss (lower is better)  0.8                  0.8 (±0)',
    'evaluate.note (higher is better)       x                    -',
    '',
    'deltas against baseline (aaaaaaaaaa); * marks the best value',
  ].join('\n'));
});

test('headline metrics come first and are the only ones ranked; bookkeeping counts are shown unranked', () => {
  const headline = [{ name: 'train.best_val_loss', goal: 'min' as const }, { name: 'evaluate.score', goal: 'max' as const }];
  const records = [
    { ...record('aaaaaaaaaa', 'baseline', { x: 1 }, { 'external.images': 10, 'evaluate.score': 0.5, 'train.best_val_loss': 0.8 }), headline },
    { ...record('bbbbbbbbbb', 'no-external', { x: 2 }, { 'external.images': 0, 'evaluate.score': 0.45, 'train.best_val_loss': 0.7 }), headline },
  ];
  const comparison = compareExperiments(records, 'aaaaaaaaaa');
  assert.deepEqual(comparison.metrics.map((m) => [m.name, m.goal, m.headline, m.best]), [
    ['train.best_val_loss', 'min', true, ['bbbbbbbbbb']],
    ['evaluate.score', 'max', true, ['aaaaaaaaaa']],
    ['external.images', undefined, false, undefined],
  ]);
  assert.equal(comparison.experiments[1]!.metrics['external.images']!.delta, -10, 'an unranked metric still shows its delta');
  const table = formatTable(comparison);
  assert.match(table, /^external\.images +10 +0 \(-10\)$/m, 'no goal, no star');
  assert.match(table, /^evaluate\.score \(higher is better\) +0\.5 \* +0\.45 \(-0\.05\)$/m);
  assert.match(table, /the headline metrics come first, the others are not ranked$/);
  const changed = compareExperiments([records[0]!, { ...records[1]!, metrics: { ...records[0]!.metrics, 'external.images': 0 } }], 'aaaaaaaaaa', { changedOnly: true });
  assert.deepEqual(changed.metrics.map((m) => m.name), ['train.best_val_loss', 'evaluate.score', 'external.images'], 'a headline metric stays even when it did not move');
});

test('runner compare on a sweep prints the table, JSON and Markdown, against any baseline', async () => {
  const dir = await studyWorkspace();
  assert.equal(cli(dir, ['sweep', 'pipelines/study.yaml', '--grid', 'post.threshold=0.2,0.5']).status, 0);
  const json = JSON.parse(cli(dir, ['compare', '--json']).stdout);
  assert.deepEqual(json.experiments.map((e: { name: string }) => e.name), ['baseline', 'post.threshold=0.2', 'post.threshold=0.5']);
  assert.deepEqual(json.params, ['post.threshold']);
  assert.deepEqual(json.experiments.map((e: { metrics: Record<string, { value: number }> }) => e.metrics['evaluate.score']!.value), [0.35, 0.2, 0.5]);
  assert.deepEqual(json.metrics.find((m: { name: string }) => m.name === 'evaluate.score').best, [json.experiments[2].id]);
  const against = JSON.parse(cli(dir, ['compare', 'post.threshold=0.5', 'post.threshold=0.2', '--baseline', 'post.threshold=0.2', '--json']).stdout);
  assert.deepEqual(against.experiments.map((e: { name: string; metrics: Record<string, { delta: number }> }) => [e.name, Number(e.metrics['evaluate.score']!.delta.toFixed(6))]), [['post.threshold=0.5', 0.3], ['post.threshold=0.2', 0]]);
  assert.match(cli(dir, ['compare']).stdout, /^evaluate\.score \(higher is better\) +0\.35 +0\.2 \(-0\.15\) +0\.5 \(\+0\.15\) \*$/m);
  assert.match(cli(dir, ['compare', '--markdown']).stdout, /^\| \*\*evaluate\.score \(higher is better\)\*\* \| 0\.35 \| 0\.2 \(-0\.15\) \| 0\.5 \(\+0\.15\) \* \|$/m);
  const missing = cli(dir, ['compare', 'nope']);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /^error: compare: no experiment "nope"; experiments: baseline, post\.threshold=0\.2, post\.threshold=0\.5\n/);
});

test('list-valued metrics (per-image details) are left out of the comparison', () => {
  const withList = [
    record('aaaaaaaaaa', 'baseline', {}, { 'evaluate.score': 0.5, 'evaluate.perImage': [{ id: 'a', score: 0.5 }] }),
    record('bbbbbbbbbb', 'other', {}, { 'evaluate.score': 0.6, 'evaluate.perImage': [{ id: 'a', score: 0.6 }] }),
  ];
  assert.deepEqual(compareExperiments(withList, 'aaaaaaaaaa').metrics.map((m) => m.name), ['evaluate.score']);
});
