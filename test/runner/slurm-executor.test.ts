// The Slurm executor against a fake Slurm (test/runner/slurm-fake.ts): runs everywhere, and pins down what a real
// cluster makes hard to observe: how stages are batched into sbatch calls, the sbatch options, argv quoting,
// one squeue per poll for all jobs, retries, Slurm's end states and cancellation. slurm-cluster.test.ts then
// checks the same paths end to end on a real single-node cluster.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeWorkspace, runCli, runs, stagePid, waitFor, writeFiles } from './helpers.js';
import { fakeSlurm, fanPipeline, type FakeSlurm } from './slurm-fake.js';
import { runnerCommand } from '../helpers/paths.js';
import { processAlive } from '../../runner/process-alive.js';

const FAN = fanPipeline('{poll: 100ms, partition: cpu, args: [--qos=normal]}');

function runWithFake(dir: string, slurm: FakeSlurm, args: string[]) {
  const result = runCli(dir, [...args, '--json'], slurm.env);
  let summary: { stages: Record<string, { status: string; attempts?: number; failure?: { reason: string; message: string } }> };
  try {
    summary = JSON.parse(result.stdout);
  } catch {
    throw new Error(`runner printed no JSON (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  return { ...result, summary };
}

function flagOf(argv: string[], name: string): string | undefined {
  return argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

test('independent stages go to Slurm as one job array, and the outputs equal a local run', () => {
  const slurm = fakeSlurm();
  const dir = makeWorkspace({ 'pipeline.yaml': FAN });
  const result = runWithFake(dir, slurm, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 0, result.stderr);
  const sbatch = slurm.calls('sbatch');
  assert.equal(sbatch.length, 2, 'one array for the three parts, one job for join');
  assert.equal(flagOf(sbatch[0]!.argv, 'array'), '0-2');
  assert.equal(flagOf(sbatch[1]!.argv, 'array'), '0-0');
  assert.ok(sbatch[0]!.argv.includes('--parsable'));
  assert.equal(flagOf(sbatch[0]!.argv, 'partition'), 'cpu');
  assert.ok(sbatch[0]!.argv.includes('--qos=normal'));

  const local = makeWorkspace({ 'pipeline.yaml': FAN.replace('executor: slurm', 'executor: local') });
  assert.equal(runCli(local, ['run', 'pipeline.yaml']).status, 0);
  for (const out of ['parts/a.txt', 'parts/b.txt', 'parts/c.txt', 'joined.txt']) {
    assert.equal(readFileSync(join(dir, out), 'utf8'), readFileSync(join(local, out), 'utf8'), out);
  }
  assert.match(readFileSync(join(dir, '.runner/logs/part@a.log'), 'utf8'), /^\$ "sh" "stage.sh" "part-a" "parts\/a.txt"\n/, 'the job output file is the stage log');
  assert.deepEqual(readFileSync(join(dir, 'pipeline.lock'), 'utf8'), readFileSync(join(local, 'pipeline.lock'), 'utf8'), 'the lock file does not depend on the executor');
});

test('a second run submits nothing, and a stage restored from the run-cache is never submitted', () => {
  const slurm = fakeSlurm();
  const dir = makeWorkspace({ 'pipeline.yaml': FAN });
  assert.equal(runWithFake(dir, slurm, ['run', 'pipeline.yaml']).status, 0);
  const second = runWithFake(dir, slurm, ['run', 'pipeline.yaml']);
  assert.deepEqual(Object.values(second.summary.stages).map((s) => s.status), ['fresh', 'fresh', 'fresh', 'fresh']);
  rmSync(join(dir, 'joined.txt'));
  const third = runWithFake(dir, slurm, ['run', 'pipeline.yaml']);
  assert.equal(third.summary.stages['join']!.status, 'restored');
  assert.equal(slurm.calls('sbatch').length, 2, 'no sbatch after the first run');
  assert.equal(runs(dir).length, 4);
});

test('stage resources, timeout and the --slurm flags become sbatch options, command line over stage over pipeline', () => {
  const slurm = fakeSlurm();
  const dir = makeWorkspace({
    'pipeline.yaml': `executor: slurm
slurm: {poll: 100ms, partition: cpu, account: lab, time: 2h, args: [--qos=low]}
stages:
  train:
    cmd: sh stage.sh train model.txt
    outs: [model.txt]
    resources: {cpus: 2.5, memory: 1.5GiB, gpus: 2}
    timeout: 90s
    slurm: {partition: gpu, args: [--constraint=a100]}
  small:
    cmd: sh stage.sh small small.txt
    outs: [small.txt]
`,
  });
  const result = runWithFake(dir, slurm, ['run', 'pipeline.yaml', '--slurm-account', 'other', '--slurm-arg=--qos=high']);
  assert.equal(result.status, 0, result.stderr);
  const byStage = new Map(slurm.calls('sbatch').map((c) => [flagOf(c.argv, 'job-name'), c.argv]));
  const train = byStage.get('runner:train')!;
  const small = byStage.get('runner:small')!;
  assert.deepEqual(
    train.filter((a) => /^--(partition|account|time|cpus-per-task|mem|gres|qos|constraint)=/.test(a)),
    ['--partition=gpu', '--account=other', '--time=2', '--cpus-per-task=3', '--mem=1536M', '--gres=gpu:2', '--qos=low', '--constraint=a100', '--qos=high'],
  );
  assert.deepEqual(
    small.filter((a) => /^--(partition|account|time|cpus-per-task|mem|gres|qos)=/.test(a)),
    ['--partition=cpu', '--account=other', '--time=120', '--cpus-per-task=1', '--qos=low', '--qos=high'],
  );
});

test('shell metacharacters in a param reach the stage as one literal argument and execute as nothing', () => {
  const slurm = fakeSlurm();
  const nasty = `$(touch pwned1); \`touch pwned2\` 'it''s' "q" > pwned3 | touch pwned4 & \\ $HOME\nnext line`;
  const dir = makeWorkspace({
    'pipeline.yaml': `executor: slurm
slurm: {poll: 100ms}
params: {msg: ${JSON.stringify(nasty)}}
stages:
  echo:
    cmd: [sh, -c, 'printf "%s|%s" "$1" "$#" > out.txt', sh, "\${msg}"]
    outs: [out.txt]
`,
  });
  const result = runWithFake(dir, slurm, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), `${nasty}|1`);
  for (const file of ['pwned1', 'pwned2', 'pwned3', 'pwned4']) assert.ok(!existsSync(join(dir, file)), `${file} was created`);
});

test('every squeue call asks about all of the run\'s live jobs at once', async () => {
  const slurm = fakeSlurm();
  // Three stages with different resources: three arrays, watched together.
  const dir = makeWorkspace({
    'pipeline.yaml': `executor: slurm
slurm: {poll: 100ms}
stages:
  one: {cmd: sh stage.sh one one.txt, outs: [one.txt], resources: {cpus: 1}}
  two: {cmd: sh stage.sh two two.txt, outs: [two.txt], resources: {cpus: 2}}
  three: {cmd: sh stage.sh three three.txt, outs: [three.txt], resources: {cpus: 3}}
`,
    'block-one': '', 'block-two': '', 'block-three': '',
  });
  const child = spawn(runnerCommand[0]!, [...runnerCommand.slice(1), 'run', 'pipeline.yaml'], { cwd: dir, env: { ...process.env, ...slurm.env }, stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await waitFor(() => slurm.calls('sbatch').length === 3 && slurm.calls('squeue').filter((c) => (flagOf(c.argv, 'jobs') ?? '').split(',').length === 3).length >= 2, 'polls of all three arrays');
  for (const name of ['one', 'two', 'three']) rmSync(join(dir, `block-${name}`));
  assert.equal(await exited, 0);
  const ids = slurm.calls('sbatch').map((c) => c.id!).sort();
  const squeue = slurm.calls('squeue');
  for (const call of squeue) {
    const asked = (flagOf(call.argv, 'jobs') ?? '').split(',');
    assert.ok(asked.length >= 1 && asked.every((id) => ids.includes(id)), `squeue asked about ${asked}`);
    assert.ok(call.argv.includes('--states=all'), 'finished jobs are listed too (their end state)');
  }
  // Polls are sequential: one call at a time, never one per job.
  for (let i = 1; i < squeue.length; i++) assert.ok(squeue[i]!.start >= squeue[i - 1]!.end, 'squeue calls overlapped');
});

test('a fan-out larger than the array size is split into sequential sbatch calls of at most arraySize stages', () => {
  const slurm = fakeSlurm();
  const dir = makeWorkspace({
    'pipeline.yaml': `executor: slurm
slurm: {poll: 100ms, arraySize: 5, submitRate: 50}
stages:
  part:
    foreach: [${Array.from({ length: 12 }, (_, i) => `p${i}`).join(', ')}]
    cmd: sh stage.sh \${item} out/\${item}.txt
    outs: ["out/\${item}.txt"]
`,
  });
  const result = runWithFake(dir, slurm, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 0, result.stderr);
  const sbatch = slurm.calls('sbatch');
  assert.deepEqual(sbatch.map((c) => flagOf(c.argv, 'array')).sort(), ['0-1', '0-4', '0-4']);
  for (let i = 1; i < sbatch.length; i++) assert.ok(sbatch[i]!.start >= sbatch[i - 1]!.end, 'sbatch calls overlapped');
  assert.equal(runs(dir).length, 12);
});

test('a failing stage reports its exit code and log, and retries resubmit it', () => {
  const slurm = fakeSlurm();
  const dir = makeWorkspace({
    'pipeline.yaml': `executor: slurm
slurm: {poll: 100ms}
stages:
  flaky:
    cmd: sh flaky.sh
    outs: [flaky.txt]
    retries: 1
  broken:
    cmd: sh -c 'echo something went wrong >&2; exit 3'
    outs: [broken.txt]
`,
    // Fails the first time, succeeds the second.
    'flaky.sh': 'if [ -e tried ]; then echo ok > flaky.txt; else touch tried; exit 1; fi\n',
  });
  const result = runWithFake(dir, slurm, ['run', 'pipeline.yaml', '--keep-going']);
  assert.equal(result.status, 1);
  assert.equal(result.summary.stages['flaky']!.status, 'ran');
  assert.equal(result.summary.stages['broken']!.failure!.reason, 'exit-non-zero');
  assert.match(result.summary.stages['broken']!.failure!.message, /exited with code 3/);
  assert.match(result.stderr, /something went wrong/);
  // flaky and broken share one array; flaky's second attempt is a new job.
  assert.deepEqual(slurm.calls('sbatch').map((c) => flagOf(c.argv, 'array')), ['0-1', '0-0']);
});

test('a job Slurm kills at its time limit fails with the Slurm state and reason, and is retried', () => {
  const slurm = fakeSlurm({ FAKE_SLURM_MINUTE_MS: '300' });
  const dir = makeWorkspace({
    'pipeline.yaml': `executor: slurm
slurm: {poll: 100ms}
stages:
  slow:
    cmd: sleep 30
    outs: [never.txt]
    timeout: 1m
    retries: 1
`,
  });
  const result = runWithFake(dir, slurm, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 1);
  const failure = result.summary.stages['slow']!.failure!;
  assert.equal(failure.reason, 'job-killed');
  assert.match(failure.message, /^Slurm job \d+_0 ended TIMEOUT: it reached its time limit .*\[Slurm reason: TimeLimit\]$/);
  assert.deepEqual(slurm.calls('sbatch').map((c) => flagOf(c.argv, 'time')), ['1', '1']);
  assert.match(readFileSync(join(dir, '.runner/logs/slow.log'), 'utf8'), /runner: Slurm job \d+_0 ended TIMEOUT/);
});

test('a job cancelled outside the runner is reported as CANCELLED', async () => {
  const slurm = fakeSlurm();
  const dir = makeWorkspace({
    'pipeline.yaml': 'executor: slurm\nslurm: {poll: 100ms}\nstages:\n  wait: {cmd: sh stage.sh wait w.txt, outs: [w.txt]}\n',
    'block-wait': '',
  });
  const child = spawn(runnerCommand[0]!, [...runnerCommand.slice(1), 'run', 'pipeline.yaml', '--json'], { cwd: dir, env: { ...process.env, ...slurm.env } });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await waitFor(() => existsSync(join(dir, 'pid-wait')), 'the job to start');
  const [id] = Object.keys(slurm.states());
  spawn(join(slurm.dir, 'bin', 'scancel'), [id!], { env: { ...process.env, ...slurm.env }, stdio: 'ignore' });
  assert.equal(await exited, 1);
  const summary = JSON.parse(stdout) as { stages: Record<string, { failure: { reason: string; message: string } }> };
  assert.equal(summary.stages['wait']!.failure.reason, 'job-killed');
  assert.match(summary.stages['wait']!.failure.message, /ended CANCELLED: it was cancelled outside the runner/);
});

test('SIGINT cancels the run\'s jobs with one scancel and exits 130', async () => {
  const slurm = fakeSlurm();
  const dir = makeWorkspace({ 'pipeline.yaml': FAN, 'block-part-a': '', 'block-part-b': '', 'block-part-c': '' });
  const child = spawn(runnerCommand[0]!, [...runnerCommand.slice(1), 'run', 'pipeline.yaml'], { cwd: dir, env: { ...process.env, ...slurm.env }, stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await waitFor(() => ['a', 'b', 'c'].every((item) => stagePid(dir, `part-${item}`) !== undefined), 'three running jobs');
  const pids = ['a', 'b', 'c'].map((item) => stagePid(dir, `part-${item}`)!);
  child.kill('SIGINT');
  assert.equal(await exited, 130);
  const scancel = slurm.calls('scancel');
  assert.equal(scancel.length, 1);
  assert.deepEqual(scancel[0]!.argv.sort(), Object.keys(slurm.states()).sort());
  assert.deepEqual(Object.values(slurm.states()), ['CANCELLED', 'CANCELLED', 'CANCELLED']);
  await waitFor(() => pids.every((pid) => !processAlive(pid)), 'the stage processes to end');
  assert.ok(!existsSync(join(dir, 'joined.txt')));
});

test('an sbatch error fails the stage with sbatch\'s own message', () => {
  const slurm = fakeSlurm({ FAKE_SLURM_SBATCH_ERROR: 'sbatch: error: invalid partition specified: nope' });
  const dir = makeWorkspace({ 'pipeline.yaml': 'executor: slurm\nslurm: {partition: nope}\nstages:\n  a: {cmd: sh stage.sh a a.txt, outs: [a.txt]}\n' });
  const result = runWithFake(dir, slurm, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 1);
  assert.equal(result.summary.stages['a']!.failure!.reason, 'spawn-failed');
  assert.match(result.summary.stages['a']!.failure!.message, /sbatch failed \(exit 1\): sbatch: error: invalid partition specified: nope/);
});

test('slurm settings are checked where they are written, and --executor accepts slurm', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': 'slurm: {time: soon, partiton: x}\nstages:\n  a: {cmd: sh stage.sh a a.txt, outs: [a.txt]}\n' });
  const bad = runCli(dir, ['run', 'pipeline.yaml']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /pipeline\.yaml:1:\d+ error: unknown key "partiton" in "slurm" \(did you mean "partition"\?\)/);
  writeFiles(dir, { 'pipeline.yaml': 'slurm: {time: soon}\nstages:\n  a: {cmd: sh stage.sh a a.txt, outs: [a.txt]}\n' });
  assert.match(runCli(dir, ['run', 'pipeline.yaml']).stderr, /pipeline\.yaml:1:15 error: slurm time "soon" is not a duration like 90s, 30m or 2h/);
  writeFiles(dir, { 'pipeline.yaml': 'stages:\n  a: {cmd: sh stage.sh a a.txt, outs: [a.txt]}\n' });
  assert.match(runCli(dir, ['run', 'pipeline.yaml', '--executor', 'slurn']).stderr, /unknown executor "slurn" in --executor \(did you mean "slurm"\?\); choices: local, slurm/);
  assert.match(runCli(dir, ['run', 'pipeline.yaml', '--executor', 'slurm', '--slurm-time', 'soon']).stderr, /--slurm-time expects a duration/);
});
