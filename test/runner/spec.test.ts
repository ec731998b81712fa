import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DiagnosticError, formatDiagnostic } from '../../runner/spec/diagnostics.js';
import { interpolate, scopeLookup, splitCommand } from '../../runner/spec/interpolate.js';
import { applySets, deepMerge } from '../../runner/spec/params.js';
import { loadPipeline } from '../../runner/spec/pipeline.js';
import { parseDuration, parseSize } from '../../runner/spec/units.js';

/** Writes `text` as pipeline.yaml in a fresh workspace; returns its path. */
function pipelineFile(text: string, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'runner-spec-'));
  mkdirSync(join(dir, '.runner'));
  for (const [name, body] of Object.entries(extra)) writeFileSync(join(dir, name), body);
  writeFileSync(join(dir, 'pipeline.yaml'), text);
  return join(dir, 'pipeline.yaml');
}

async function diagnosticsOf(text: string, options = {}): Promise<string> {
  const file = pipelineFile(text);
  try {
    await loadPipeline(file, options);
  } catch (cause) {
    if (cause instanceof DiagnosticError) return cause.diagnostics.map(formatDiagnostic).join('\n').replaceAll(dirname(file) + '/', '');
    throw cause;
  }
  assert.fail('expected the pipeline to be refused');
}

test('an unknown stage key is located and gets a "did you mean"', async () => {
  const text = await diagnosticsOf('stages:\n  prep:\n    cmd: echo hi\n    dep: [a]\n');
  assert.equal(
    text,
    [
      'pipeline.yaml:4:5 error: unknown key "dep" in stage "prep" (did you mean "deps"?)',
      '  4 |     dep: [a]',
      '    |     ^^^',
    ].join('\n'),
  );
});

test('headline metrics name a stage with metrics files and a goal of max or min', async () => {
  const stages = 'stages:\n  evaluate:\n    cmd: echo hi\n    metrics: [m.json]\n';
  const file = pipelineFile(`headline:\n  evaluate.score: max\n  evaluate.seconds: min\n${stages}`);
  assert.deepEqual((await loadPipeline(file)).headline, [{ name: 'evaluate.score', goal: 'max' }, { name: 'evaluate.seconds', goal: 'min' }]);
  assert.equal(
    await diagnosticsOf(`headline:\n  evalute.score: max\n${stages}`),
    [
      'pipeline.yaml:2:3 error: headline metric "evalute.score": no stage "evalute" with metrics files (did you mean "evaluate"?)',
      '  2 |   evalute.score: max',
      '    |   ^^^^^^^^^^^^^',
    ].join('\n'),
  );
  assert.match(await diagnosticsOf(`headline:\n  evaluate.score: highest\n${stages}`), /^pipeline\.yaml:2:\d+ error: .*(max|min)/);
});

test('an unknown ${} reference points at the reference inside the cmd', async () => {
  const text = await diagnosticsOf('params: {prep: {size: 5}}\nstages:\n  prep:\n    cmd: run --size ${prep.sise} --out x\n');
  assert.equal(
    text,
    [
      'pipeline.yaml:4:21 error: unknown reference ${prep.sise} (did you mean "prep.size"?)',
      '  4 |     cmd: run --size ${prep.sise} --out x',
      '    |                     ^^^^^^^^^^^^',
    ].join('\n'),
  );
});

test('a cycle is printed stage by stage', async () => {
  const text = await diagnosticsOf('stages:\n  a:\n    cmd: x\n    deps: [b.txt]\n    outs: [a.txt]\n  b:\n    cmd: y\n    deps: [a.txt]\n    outs: [b.txt]\n');
  assert.match(text, /^pipeline\.yaml:\d+:\d+ error: dependency cycle: (a -> b -> a|b -> a -> b)\n/);
});

test('two stages writing one out are refused at the second', async () => {
  const text = await diagnosticsOf('stages:\n  a:\n    cmd: x\n    outs: [data/out]\n  b:\n    cmd: y\n    outs: [data/out/part]\n');
  assert.equal(
    text,
    [
      'pipeline.yaml:7:12 error: stages "a" and "b" both write the out "data/out/part" (it lies inside another out); every out has one owner',
      '  7 |     outs: [data/out/part]',
      '    |            ^^^^^^^^^^^^^',
    ].join('\n'),
  );
});

test('outs and deps that leave the workspace are refused', async () => {
  const text = await diagnosticsOf('stages:\n  a:\n    cmd: x\n    deps: [/etc/passwd]\n    outs: [../up]\n');
  assert.match(text, /pipeline\.yaml:4:12 error: dep "\/etc\/passwd" of stage "a" is outside the workspace/);
  assert.match(text, /pipeline\.yaml:5:12 error: out "\.\.\/up" of stage "a" is outside the workspace/);
});

test('bad YAML is located, with no stack trace', async () => {
  const text = await diagnosticsOf('stages:\n  a:\n    cmd: [x, y\n');
  assert.match(text, /^pipeline\.yaml:\d+:\d+ error: invalid YAML: /);
});

test('a wrong type names the stage and key', async () => {
  const text = await diagnosticsOf('stages:\n  a:\n    cmd: x\n    retries: many\n');
  assert.equal(text, ['pipeline.yaml:4:14 error: stage "a" key "retries" must be an integer', '  4 |     retries: many', '    |              ^^^^'].join('\n'));
});

test('an unknown profile lists the profiles', async () => {
  const text = await diagnosticsOf('params: {a: 1}\nprofiles:\n  quick: {a: 2}\nstages:\n  s: {cmd: x}\n', { profile: 'quik' });
  assert.match(text, /error: unknown profile "quik" in --profile \(did you mean "quick"\?\); profiles: quick/);
});

test('--executor accepts only known executors and lists them', async () => {
  const text = await diagnosticsOf('stages:\n  s: {cmd: x}\n', { executor: 'pbs' });
  assert.equal(text, 'error: unknown executor "pbs" in --executor; choices: local, slurm');
});

test('a string cmd is split before interpolation, so a param value stays one argv element', async () => {
  const file = pipelineFile('params: {evil: "a b; rm -rf / $(x)"}\nstages:\n  s:\n    cmd: prog --arg ${evil} "two words"\n    params: [evil]\n');
  const pipeline = await loadPipeline(file);
  assert.deepEqual(pipeline.stages[0]!.argv, ['prog', '--arg', 'a b; rm -rf / $(x)', 'two words']);
  assert.deepEqual(pipeline.stages[0]!.params, { evil: 'a b; rm -rf / $(x)' });
});

test('profiles deep-merge and --set values are parsed as YAML scalars', async () => {
  const file = pipelineFile('params:\n  train: {lr: 1.0e-4, epochs: 25, name: x}\nprofiles:\n  quick: {train: {epochs: 1}}\nstages:\n  s:\n    cmd: [t, "${train.lr}", "${train.epochs}"]\n    params: [train]\n');
  const pipeline = await loadPipeline(file, { profile: 'quick', sets: ['train.lr=1e-5', 'train.name=[1, 2]'] });
  assert.deepEqual(pipeline.params, { train: { lr: 1e-5, epochs: 1, name: [1, 2] } });
  assert.deepEqual(pipeline.stages[0]!.argv, ['t', '0.00001', '1']);
});

test('--set of a param that does not exist is an error with a suggestion', () => {
  assert.throws(() => applySets({ train: { lr: 1 } }, ['train.lrr=2']), /--set train\.lrr=2: no param "train\.lrr" \(did you mean "train\.lr"\?\)/);
});

test('foreach and matrix make one stage per item, with ${item}', async () => {
  const file = pipelineFile(
    'params: {sets: [val, test]}\nstages:\n  pred:\n    foreach: ${sets}\n    cmd: p ${item}\n    outs: ["out/${item}"]\n  grid:\n    matrix: {lr: [1, 2], bs: [8]}\n    cmd: g ${item.lr} ${item.bs}\n',
  );
  const pipeline = await loadPipeline(file);
  const names = pipeline.stages.map((s) => s.name);
  assert.deepEqual(names, ['pred@val', 'pred@test', 'grid@lr=1,bs=8', 'grid@lr=2,bs=8']);
  assert.deepEqual(pipeline.stages[3]!.argv, ['g', '2', '8']);
  assert.deepEqual(pipeline.stages[1]!.outs, ['out/test']);
});

test('params can live in their own file beside the pipeline', async () => {
  const file = pipelineFile('params: params.yaml\nstages:\n  s:\n    cmd: [x, "${a.b}"]\n', { 'params.yaml': 'a: {b: 7}\n' });
  const pipeline = await loadPipeline(file);
  assert.deepEqual(pipeline.stages[0]!.argv, ['x', '7']);
});

test('splitCommand follows shell quoting without expanding anything', () => {
  assert.deepEqual(splitCommand(`a 'b c' "d \\"e\\"" f\\ g $HOME *`), ['a', 'b c', 'd "e"', 'f g', '$HOME', '*']);
  assert.throws(() => splitCommand('a "b'), /unterminated double quote/);
});

test('a list param is JSON when it is a whole argv element and an error inside text', () => {
  const lookup = scopeLookup({ ids: [1, 2] });
  assert.deepEqual(interpolate('${ids}', lookup), [1, 2]);
  assert.throws(() => interpolate('--ids=${ids}', lookup), /is a list; it can only stand alone/);
});

test('durations and sizes read the way people write them', () => {
  assert.equal(parseDuration('2h'), 7_200_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration(90), 90_000);
  assert.equal(parseDuration('soon'), undefined);
  assert.equal(parseSize('4GB'), 4e9);
  assert.equal(parseSize('512MiB'), 512 * 2 ** 20);
  assert.equal(parseSize('lots'), undefined);
});

test('deepMerge merges maps and replaces everything else', () => {
  assert.deepEqual(deepMerge({ a: { b: 1, c: [1] } }, { a: { c: [2] } }), { a: { b: 1, c: [2] } });
});
