// Optional deps: a data folder that may be absent (the DSB2018 pipeline falls back to synthetic data then).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeWorkspace, runCli, runJson, runs } from './helpers.js';

const PIPELINE = `stages:
  ingest:
    cmd: sh stage.sh ingest out.txt
    deps: [stage.sh, {path: data/real, optional: true}]
    outs: [out.txt]
`;

test('an absent optional dep runs the stage, and its later arrival makes the stage stale', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': PIPELINE });
  const first = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(first.status, 0, first.stderr);
  assert.deepEqual(runs(dir), ['ingest']);
  assert.match(runCli(dir, ['status', 'pipeline.yaml']).stdout, /ingest: fresh/);
  mkdirSync(join(dir, 'data/real'), { recursive: true });
  writeFileSync(join(dir, 'data/real/a.txt'), 'a\n');
  assert.match(runCli(dir, ['status', 'pipeline.yaml']).stdout, /ingest: stale\n {4}dep changed: data\/real/);
  runCli(dir, ['run', 'pipeline.yaml']);
  assert.deepEqual(runs(dir), ['ingest', 'ingest']);
});

test('an absent required dep still fails the stage and names the path', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': PIPELINE.replace('{path: data/real, optional: true}', 'data/real') });
  const result = runCli(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 1);
  assert.match(result.stderr + result.stdout, /data\/real/);
  assert.deepEqual(runs(dir), []);
});

test('a param written as an empty map is open: profiles and --set may add keys below it', () => {
  const dir = makeWorkspace({
    'pipeline.yaml': `params:
  model: {preset: a, config: {}}
profiles:
  p: {model: {config: {rpn: {nms: 0.6}}}}
stages:
  s:
    cmd: [sh, stage.sh, s, out.txt, "\${model}"]
    params: [model]
    outs: [out.txt]
`,
  });
  const params = runCli(dir, ['params', 'pipeline.yaml', '--profile', 'p', '--set', 'model.config.image.size=128', '--json']);
  assert.equal(params.status, 0, params.stderr);
  assert.deepEqual(JSON.parse(params.stdout).model, { preset: 'a', config: { rpn: { nms: 0.6 }, image: { size: 128 } } });
  const typo = runCli(dir, ['params', 'pipeline.yaml', '--set', 'model.presett=b']);
  assert.equal(typo.status, 2);
  assert.match(typo.stderr, /no param "model\.presett".*did you mean "model\.preset"/);
});
