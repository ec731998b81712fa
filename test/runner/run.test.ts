// The real CLI in temp workspaces, with fake stages (test/runner/helpers.ts STAGE_SH) that count their runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeWorkspace, runCli, runJson, runs } from './helpers.js';

const CHAIN = `params:
  prep: {size: 512}
  train: {lr: 1.0e-4, epochs: 25}
  other: 1
stages:
  prep:
    cmd: sh stage.sh prep data/prep.txt --size \${prep.size}
    deps: [stage.sh, data/raw]
    params: [prep.size]
    outs: [data/prep.txt]
  train:
    cmd: [sh, stage.sh, train, models/m/, --lr, "\${train.lr}"]
    deps: [data/prep.txt, train.py]
    params: [train]
    outs: [models/m]
  report:
    cmd: sh stage.sh report report.txt
    deps: [data/raw]
    outs: [report.txt]
`;

function chainWorkspace(): string {
  return makeWorkspace({ 'pipeline.yaml': CHAIN, 'data/raw/a.txt': 'a\n', 'train.py': 'print(1)\n' });
}

test('a second run finds every stage fresh and runs nothing', () => {
  const dir = chainWorkspace();
  const first = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(first.status, 0, first.stderr);
  assert.deepEqual(runs(dir).sort(), ['prep', 'report', 'train']);
  const lock = readFileSync(join(dir, 'pipeline.lock'), 'utf8');
  const second = runJson(dir, ['run', 'pipeline.yaml']);
  assert.deepEqual(Object.values(second.summary.stages).map((s) => s.status), ['fresh', 'fresh', 'fresh']);
  assert.equal(runs(dir).length, 3);
  assert.equal(readFileSync(join(dir, 'pipeline.lock'), 'utf8'), lock, 'a no-op run rewrites the lock file byte for byte');
});

test('changing a param reruns only the stages that declare it, and status says which param moved', () => {
  const dir = chainWorkspace();
  runCli(dir, ['run', 'pipeline.yaml']);
  const status = runCli(dir, ['status', 'pipeline.yaml', '--set', 'train.lr=1e-5']);
  assert.match(status.stdout, /train: stale\n {4}param train\.lr: 0\.0001 -> 0\.00001\n/);
  assert.match(status.stdout, /prep: fresh/);
  const result = runJson(dir, ['run', 'pipeline.yaml', '--set', 'train.lr=1e-5', '--set', 'other=2']);
  assert.deepEqual(result.summary.stages['train']!.status, 'ran');
  assert.deepEqual(runs(dir).slice(3), ['train']);
});

test('changing a code dep or a data dep reruns exactly the stages downstream of it', () => {
  const dir = chainWorkspace();
  runCli(dir, ['run', 'pipeline.yaml']);
  writeFileSync(join(dir, 'train.py'), 'print(2)\n');
  const status = runCli(dir, ['status', 'pipeline.yaml']);
  assert.match(status.stdout, /train: stale\n {4}code changed: train\.py\n/);
  runCli(dir, ['run', 'pipeline.yaml']);
  assert.deepEqual(runs(dir).slice(3), ['train']);
  writeFileSync(join(dir, 'data/raw/b.txt'), 'b\n');
  assert.match(runCli(dir, ['status', 'pipeline.yaml']).stdout, /prep: stale\n {4}dep changed: data\/raw \(2 files, was 1\)/);
  runCli(dir, ['run', 'pipeline.yaml']);
  // prep's output is identical (it doesn't read data/raw), so train stays fresh.
  assert.deepEqual(runs(dir).slice(4).sort(), ['prep', 'report']);
});

test('param A -> B -> A runs nothing the third time and restores everything from the run-cache', () => {
  const dir = chainWorkspace();
  runCli(dir, ['run', 'pipeline.yaml']);
  runCli(dir, ['run', 'pipeline.yaml', '--set', 'prep.size=256']);
  assert.equal(runs(dir).length, 5);
  assert.match(runCli(dir, ['status', 'pipeline.yaml']).stdout, /prep: stale\n {4}param prep\.size: 256 -> 512\n {4}restorable from run-cache/);
  const third = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(runs(dir).length, 5, 'nothing ran');
  assert.equal(third.summary.stages['prep']!.status, 'restored');
  assert.equal(third.summary.stages['train']!.status, 'restored');
  assert.match(readFileSync(join(dir, 'data/prep.txt'), 'utf8'), /--size 512/);
});

test('a deleted or modified output is reported and restored', () => {
  const dir = chainWorkspace();
  runCli(dir, ['run', 'pipeline.yaml']);
  writeFileSync(join(dir, 'report.txt'), 'edited by hand\n');
  assert.match(runCli(dir, ['status', 'pipeline.yaml']).stdout, /report: stale\n {4}output modified: report\.txt\n {4}restorable from run-cache/);
  const result = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.summary.stages['report']!.status, 'restored');
  assert.match(readFileSync(join(dir, 'report.txt'), 'utf8'), /^report/);
});

test('shell metacharacters in a param are passed as one argument and executed as nothing', () => {
  const evil = '$(touch pwned1); touch pwned2 && `touch pwned3` | cat > pwned4';
  const dir = makeWorkspace({
    'pipeline.yaml': `params: {msg: x}\nstages:\n  s:\n    cmd: sh stage.sh s out.txt \${msg}\n    params: [msg]\n    outs: [out.txt]\n`,
  });
  const result = runCli(dir, ['run', 'pipeline.yaml', '--set', `msg=${evil}`]);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), `s out.txt ${evil}\n`);
  for (const file of ['pwned1', 'pwned2', 'pwned3', 'pwned4']) assert.ok(!existsSync(join(dir, file)), `${file} was created`);
});

test('a failure skips its dependents, --keep-going still runs independent stages, exit code 1', () => {
  const dir = makeWorkspace({
    'pipeline.yaml': `stages:
  bad:
    cmd: sh -c "echo oops >&2; exit 3"
    outs: [bad.txt]
  after:
    cmd: sh stage.sh after after.txt
    deps: [bad.txt]
    outs: [after.txt]
  independent:
    cmd: sh stage.sh independent ind.txt
    outs: [ind.txt]
`,
  });
  const result = runJson(dir, ['run', 'pipeline.yaml', '-j', '1', '--keep-going']);
  assert.equal(result.status, 1);
  assert.equal(result.summary.stages['bad']!.status, 'failed');
  assert.equal(result.summary.stages['bad']!.failure!.message, 'exited with code 3');
  assert.equal(result.summary.stages['after']!.status, 'skipped');
  assert.equal(result.summary.stages['after']!.failure!.reason, 'dependency-failed');
  assert.equal(result.summary.stages['independent']!.status, 'ran');
  assert.match(result.stderr, /✗ bad failed: exited with code 3 \(log: \.runner\/logs\/bad\.log\)\n {4}\| oops/);
});

test('a stage that exits 0 without writing its out fails with missing-output', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': 'stages:\n  lazy:\n    cmd: "true"\n    outs: [never.txt]\n' });
  const result = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 1);
  assert.equal(result.summary.stages['lazy']!.failure!.message, 'exited 0 but did not write its declared out "never.txt"');
  assert.ok(!existsSync(join(dir, 'pipeline.lock')) || !readFileSync(join(dir, 'pipeline.lock'), 'utf8').includes('lazy'));
});

test('exit code 137 is explained as a kill, probably out of memory', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': 'stages:\n  oom:\n    cmd: sh -c "kill -9 $$"\n' });
  const result = runJson(dir, ['run', 'pipeline.yaml']);
  assert.match(result.summary.stages['oom']!.failure!.message, /killed by SIGKILL \(probably out of memory/);
});

test('the stage gets RUNNER_PARAMS, RUNNER_EVENTS and RUNNER_STAGE, and its metric events are recorded', () => {
  const dir = makeWorkspace({
    'pipeline.yaml': `params: {train: {lr: 0.1}, unused: 2}
stages:
  s:
    cmd: [sh, -c, 'cat "$RUNNER_PARAMS" > params.json; echo "$RUNNER_STAGE" > stage.txt; echo "{\\"metric\\": {\\"loss\\": 0.5}}" >> "$RUNNER_EVENTS"']
    params: [train]
    outs: [params.json, stage.txt]
`,
  });
  assert.equal(runCli(dir, ['run', 'pipeline.yaml']).status, 0);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'params.json'), 'utf8')), { train: { lr: 0.1 } });
  assert.equal(readFileSync(join(dir, 'stage.txt'), 'utf8'), 's\n');
});

test('--only, --until and --force choose what runs', () => {
  const dir = chainWorkspace();
  runCli(dir, ['run', 'pipeline.yaml', '--until', 'train']);
  assert.deepEqual(runs(dir), ['prep', 'train']);
  runCli(dir, ['run', 'pipeline.yaml', '--only', 'report']);
  assert.deepEqual(runs(dir), ['prep', 'train', 'report']);
  runCli(dir, ['run', 'pipeline.yaml', '--force', 'prep']);
  assert.deepEqual(runs(dir), ['prep', 'train', 'report', 'prep']);
  const unknown = runCli(dir, ['run', 'pipeline.yaml', '--only', 'repot']);
  assert.equal(unknown.status, 2);
  assert.equal(unknown.stderr, 'error: unknown stage "repot" in --only (did you mean "report"?)\n');
});

test('--dry-run says what would run and changes nothing', () => {
  const dir = chainWorkspace();
  const result = runCli(dir, ['run', 'pipeline.yaml', '--dry-run']);
  assert.equal(result.status, 0);
  assert.match(result.stdout, /^run {5}prep {2}\(never run\)$/m);
  assert.deepEqual(runs(dir), []);
  assert.ok(!existsSync(join(dir, 'pipeline.lock')));
});

test('a pipeline error exits 2 with the located message and no stack trace', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': 'stages:\n  a:\n    cmd: x\n    outs: [../escape.txt]\n' });
  const result = runCli(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /^pipeline\.yaml:4:12 error: out "\.\.\/escape\.txt" of stage "a" is outside the workspace/);
  assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/);
});

test('every command answers --help, and an unknown flag gets a suggestion', () => {
  const dir = makeWorkspace({});
  for (const command of ['run', 'status', 'dag', 'params', 'gc']) {
    const result = runCli(dir, [command, '--help']);
    assert.equal(result.status, 0);
    assert.match(result.stdout, new RegExp(`^usage: runner ${command}`));
  }
  const bad = runCli(dir, ['run', 'p.yaml', '--dryrun']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /Unknown option '--dryrun'.*\(did you mean "--dry-run"\?\)/);
});

test('dag prints text, mermaid and dot', () => {
  const dir = chainWorkspace();
  assert.equal(runCli(dir, ['dag', 'pipeline.yaml']).stdout, 'prep\nreport\ntrain   <- prep\n');
  assert.match(runCli(dir, ['dag', 'pipeline.yaml', '--format', 'mermaid']).stdout, /flowchart TD\n[\s\S]*s0 --> s2/);
  assert.match(runCli(dir, ['dag', 'pipeline.yaml', '--format', 'dot']).stdout, /"prep" -> "train";/);
});

test('gc keeps what the lock and run-cache reference and drops the rest', () => {
  const dir = chainWorkspace();
  runCli(dir, ['run', 'pipeline.yaml']);
  const stray = join(dir, '.runner/cache/objects/ff/ff00');
  mkdirSync(dirname(stray), { recursive: true });
  writeFileSync(stray, 'orphan');
  const result = runCli(dir, ['gc', '--json']);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout).removedObjects, 1);
  assert.ok(!existsSync(stray));
  assert.equal(runJson(dir, ['run', 'pipeline.yaml']).summary.stages['train']!.status, 'fresh');
});

test('gc collects the cache directory a pipeline names in `cache: {dir}`, not only .runner/cache', () => {
  const dir = makeWorkspace({
    'pipeline.yaml': `cache: {dir: shared-cache}
stages:
  s:
    cmd: [sh, -c, 'echo 1 > out.txt']
    outs: [out.txt]
`,
  });
  assert.equal(runCli(dir, ['run', 'pipeline.yaml']).status, 0);
  const stray = join(dir, 'shared-cache/objects/ff/ff00');
  mkdirSync(dirname(stray), { recursive: true });
  writeFileSync(stray, 'orphan');
  const result = runCli(dir, ['gc', '--json']);
  assert.equal(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout) as { cacheDir: string; removedObjects: number };
  assert.equal(report.cacheDir, join(dir, 'shared-cache'));
  assert.equal(report.removedObjects, 1);
  assert.ok(!existsSync(stray));
  assert.equal(runJson(dir, ['run', 'pipeline.yaml']).summary.stages['s']!.status, 'fresh');
});

