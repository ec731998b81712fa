// The pieces of experiments: --grid parsing and combinations, the mirrored experiment workspace, and
// `runner exp list/show/remove`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DiagnosticError } from '../../runner/spec/diagnostics.js';
import { cartesian, overridesAsSets, overridesName, parseGridFlag, splitTopLevel } from '../../runner/experiments/grid.js';
import { mirrorWorkspace } from '../../runner/experiments/workspace.js';
import { flatten } from '../../runner/experiments/flatten.js';
import { lockWorkspace } from '../../runner/workspace-lock.js';
import { cli, studyWorkspace } from './experiments-helpers.js';

function gridError(flag: string): string {
  try {
    parseGridFlag(flag);
  } catch (cause) {
    assert.ok(cause instanceof DiagnosticError);
    return cause.message;
  }
  assert.fail(`--grid ${flag} was accepted`);
}

test('a grid value that is not valid YAML, or an anchor, is an error naming the flag, as with --set', () => {
  assert.throws(() => parseGridFlag('a=1,{k: 1'), /unbalanced brackets/);
  assert.throws(() => parseGridFlag('a=1,[1 2]]x'), /unbalanced brackets|not valid YAML/);
  assert.throws(() => parseGridFlag('a=1,&x'), /--grid a=1,&x: YAML anchors and aliases .* quote it: --grid 'a="&x"'/);
  assert.throws(() => parseGridFlag('a=1,"x" y'), /--grid a=1,"x" y: the value is not valid YAML/);
  assert.deepEqual(parseGridFlag('a=1,"&x"').values, [1, '&x']);
});

test('grid values are YAML, split at commas outside brackets and quotes', () => {
  assert.deepEqual(parseGridFlag('post.threshold=0.35,0.5'), { key: 'post.threshold', values: [0.35, 0.5] });
  assert.deepEqual(parseGridFlag('a=true,largest,"x,y",[1,2],{k: 1}'), { key: 'a', values: [true, 'largest', 'x,y', [1, 2], { k: 1 }] });
  assert.deepEqual(splitTopLevel("a,'b,c',[d,e]"), ['a', "'b,c'", '[d,e]']);
  assert.equal(splitTopLevel('[a,b'), undefined);
});

test('malformed grid flags are errors that quote the flag and say what is wrong', () => {
  assert.equal(gridError('post.threshold=0.3,,0.5'), '--grid post.threshold=0.3,,0.5: value 2 is empty (two commas in a row, or a trailing comma?)');
  assert.equal(gridError('post.threshold=0.3,'), '--grid post.threshold=0.3,: value 2 is empty (two commas in a row, or a trailing comma?)');
  assert.equal(gridError('post.threshold=[0.3,0.5'), '--grid post.threshold=[0.3,0.5: unbalanced brackets or quotes in the values');
  assert.equal(gridError('post.threshold=0.5,0.5'), '--grid post.threshold=0.5,0.5: the value 0.5 is listed twice');
  assert.equal(gridError('=1,2'), '--grid =1,2: expected KEY=V1,V2,... (e.g. --grid postprocess.threshold=0.35,0.5)');
  assert.equal(gridError('post threshold=1,2'), '--grid post threshold=1,2: "post threshold" is not a param name (dotted words, e.g. train.lr)');
});

test('the combinations of several axes vary the first axis slowest, and name and set themselves', () => {
  const combos = cartesian([{ key: 'a', values: [1, 2] }, { key: 'b', values: ['x', 'true'] }]);
  assert.deepEqual(combos, [{ a: 1, b: 'x' }, { a: 1, b: 'true' }, { a: 2, b: 'x' }, { a: 2, b: 'true' }]);
  assert.equal(overridesName(combos[1]!), 'a=1,b=true');
  assert.deepEqual(overridesAsSets(combos[1]!), ['a=1', 'b="true"'], 'a string that reads as another YAML type is quoted');
  assert.deepEqual(cartesian([]), [{}]);
});

test('nested metrics and params flatten to dotted keys, arrays staying whole', () => {
  assert.deepEqual(flatten({ score: 0.5, per_modality: { he: 0.3, fl: { a: 1 } }, ids: [1, 2], empty: {} }), { score: 0.5, 'per_modality.he': 0.3, 'per_modality.fl.a': 1, ids: [1, 2] });
  assert.deepEqual(flatten({ a: 1 }, 'train'), { 'train.a': 1 });
});

test('an experiment workspace links inputs, keeps owned paths real, and drops links to deleted inputs', () => {
  const main = mkdtempSync(join(tmpdir(), 'runner-mirror-'));
  for (const file of ['code/a.js', 'data/raw/x.txt', 'data/prep/old.txt', 'pipelines/p.yaml', 'pipelines/p.lock', 'gone.txt']) {
    mkdirSync(join(main, file, '..'), { recursive: true });
    writeFileSync(join(main, file), file);
  }
  mkdirSync(join(main, '.runner/exps'), { recursive: true });
  const target = join(main, '.runner/exps/abc');
  const owned = ['.runner', 'data/prep', 'pipelines/p.lock'];
  mirrorWorkspace(main, target, owned);
  assert.equal(readlinkSync(join(target, 'code')), join(main, 'code'));
  assert.equal(readlinkSync(join(target, 'data/raw')), join(main, 'data/raw'));
  assert.ok(!lstatSync(join(target, 'data')).isSymbolicLink(), 'a folder holding an out is real');
  assert.ok(!existsSync(join(target, 'data/prep')), 'outs are not linked: the experiment writes its own');
  assert.equal(readFileSync(join(target, 'pipelines/p.yaml'), 'utf8'), 'pipelines/p.yaml');
  assert.ok(!existsSync(join(target, 'pipelines/p.lock')), 'the lock file is the experiment\'s own');
  assert.ok(!existsSync(join(target, '.runner/exps')), 'the runner folder is never mirrored');
  writeFileSync(join(target, 'data/prep-note.txt'), 'own file');
  rmSync(join(main, 'gone.txt'));
  mirrorWorkspace(main, target, owned);
  assert.ok(!existsSync(join(target, 'gone.txt')) && !lstatSync(join(target, 'code')).isFile());
  assert.equal(readFileSync(join(target, 'data/prep-note.txt'), 'utf8'), 'own file', 'files the experiment wrote are kept');
});

test('an experiment folder without a record is listed as interrupted and removed by id, not while a runner holds the workspace', async () => {
  const dir = await studyWorkspace();
  const folder = join(dir, '.runner/exps/abcdef0123');
  mkdirSync(join(folder, 'models'), { recursive: true });
  assert.equal(cli(dir, ['exp', 'list']).stdout, 'abcdef0123  (interrupted: no record; rerun its sweep to resume from its checkpoints, or `runner exp remove abcdef0123`)\n');
  const release = await lockWorkspace(dir); // as a runner of this process would hold it
  try {
    const busy = cli(dir, ['exp', 'remove', 'abcdef']);
    assert.equal(busy.status, 2, busy.stderr);
    assert.ok(existsSync(folder), 'kept while the workspace is busy');
  } finally {
    await release();
  }
  assert.equal(cli(dir, ['exp', 'remove', 'abcdef']).stdout, 'removed abcdef0123 (interrupted, no record)\n');
  assert.ok(!existsSync(folder));
  assert.equal(cli(dir, ['exp', 'list']).stdout, 'no experiments yet (run `runner sweep`)\n');
});

test('exp list shows each experiment once, show prints its record, remove deletes record and folder', async () => {
  const dir = await studyWorkspace();
  assert.equal(cli(dir, ['exp', 'list']).stdout, 'no experiments yet (run `runner sweep`)\n');
  assert.equal(cli(dir, ['sweep', 'pipelines/study.yaml', '--grid', 'post.threshold=0.5']).status, 0);
  const list = cli(dir, ['exp', 'list']).stdout.trim().split('\n');
  assert.equal(list.length, 2);
  assert.match(list[0]!, /^[0-9a-f]{10}  baseline\s+ok .* 4\/4 ran  \(pipeline params\)$/);
  assert.match(list[1]!, /^[0-9a-f]{10}  post\.threshold=0\.5 ok .* 1\/4 ran  post\.threshold=0\.5$/);
  const record = JSON.parse(cli(dir, ['exp', 'show', 'post.threshold=0.5']).stdout);
  assert.deepEqual(record.overrides, { 'post.threshold': 0.5 });
  assert.equal(record.metrics['evaluate.score'], 0.5);
  assert.deepEqual(record.plots, [{ stage: 'train', path: 'models/m/history.json' }]);
  const unknown = cli(dir, ['exp', 'show', 'baseline2']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /^error: exp show: no experiment "baseline2" \(did you mean "baseline"\?\); experiments: baseline, post\.threshold=0\.5\n/);
  assert.equal(cli(dir, ['exp', 'remove', record.id.slice(0, 6)]).stdout, `removed ${record.id} (post.threshold=0.5)\n`);
  assert.ok(!existsSync(join(dir, '.runner/exps', record.id)) && !existsSync(join(dir, '.runner/exps', `${record.id}.json`)));
  assert.equal(cli(dir, ['exp', 'list']).stdout.trim().split('\n').length, 1);
  assert.match(cli(dir, ['exp', 'lst']).stderr, /unknown exp subcommand "lst" \(did you mean "list"\?\)/);
});
