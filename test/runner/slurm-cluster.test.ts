// The Slurm executor end to end on a real cluster (CI: the single-node one .ci/slurm-setup.sh starts). Skipped
// with a message where no Slurm answers. The time-limit test needs a real minute or two (Slurm's time limits
// are whole minutes and enforced every ~30 s): it runs only with RUNNER_SLOW_TESTS=1; the fake-Slurm tests
// (slurm-executor.test.ts) cover the same path in a second.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { makeWorkspace, runCli, runJson, runs, stagePid, waitFor } from './helpers.js';
import { runnerCommand } from '../helpers/paths.js';
import { fanPipeline } from './slurm-fake.js';
import { processAlive } from '../../runner/process-alive.js';

function slurmUp(): boolean {
  const sinfo = spawnSync('sinfo', ['-h', '-o', '%T'], { encoding: 'utf8', timeout: 10_000 });
  return sinfo.status === 0 && /idle|mix|alloc/.test(sinfo.stdout);
}
const skip = slurmUp() ? false : 'no Slurm cluster reachable (sinfo shows no usable node); run .ci/slurm-setup.sh as root to start one';
const slowSkip = skip || (process.env['RUNNER_SLOW_TESTS'] === '1' ? false : 'slow (about 2 minutes): set RUNNER_SLOW_TESTS=1 to run it');

/** Job id -> state of every job squeue still knows, this run's or not. */
function squeue(): Map<string, { state: string; name: string }> {
  const out = spawnSync('squeue', ['--noheader', '--array', '--states=all', '--format=%i|%T|%j'], { encoding: 'utf8' }).stdout;
  return new Map(out.split('\n').filter(Boolean).map((line) => {
    const [id, state, name] = line.trim().split('|');
    return [id!, { state: state!, name: name! }];
  }));
}

/** Names of RUNNING jobs of the fan-out (all tasks of an array share its name, `runner:part@a+2`). */
function runningParts(): string[] {
  return [...squeue().values()].filter((j) => j.state === 'RUNNING' && j.name.startsWith('runner:part@')).map((j) => j.name);
}

const FAN = fanPipeline('{poll: 250ms}');

test('a pipeline runs through Slurm with jobs in parallel, outputs equal to a local run, and a second run submits nothing', { skip }, async () => {
  const dir = makeWorkspace({ 'pipeline.yaml': FAN, 'block-part-a': '', 'block-part-b': '', 'block-part-c': '' });
  const child = spawn(runnerCommand[0]!, [...runnerCommand.slice(1), 'run', 'pipeline.yaml'], { cwd: dir, stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  // The single CI node has few cpus: at least two of the three parts must run at once.
  let seen = 0;
  await waitFor(() => (seen = Math.max(seen, runningParts().length)) >= 2, 'two jobs RUNNING at once in squeue', 60_000);
  for (const item of ['a', 'b', 'c']) rmSync(join(dir, `block-part-${item}`));
  assert.equal(await exited, 0);
  assert.ok(seen >= 2);

  const local = makeWorkspace({ 'pipeline.yaml': FAN.replace('executor: slurm', 'executor: local') });
  assert.equal(runCli(local, ['run', 'pipeline.yaml']).status, 0);
  for (const out of ['parts/a.txt', 'parts/b.txt', 'parts/c.txt', 'joined.txt']) {
    assert.equal(readFileSync(join(dir, out), 'utf8'), readFileSync(join(local, out), 'utf8'), out);
  }
  assert.equal(readFileSync(join(dir, 'pipeline.lock'), 'utf8'), readFileSync(join(local, 'pipeline.lock'), 'utf8'));
  assert.match(readFileSync(join(dir, '.runner/logs/join.log'), 'utf8'), /^\$ "sh" "stage.sh" "join" "joined.txt"\n/);

  const jobsBefore = squeue().size;
  const second = runJson(dir, ['run', 'pipeline.yaml']);
  assert.deepEqual(Object.values(second.summary.stages).map((s) => s.status), ['fresh', 'fresh', 'fresh', 'fresh']);
  assert.equal(squeue().size, jobsBefore, 'no job was submitted');
  assert.equal(runs(dir).length, 4);
});

test('a failing stage on Slurm reports its exit code and its job output as the log', { skip }, () => {
  const dir = makeWorkspace({
    'pipeline.yaml': `executor: slurm
slurm: {poll: 250ms}
stages:
  broken:
    cmd: [sh, -c, 'echo "on $SLURM_JOB_ID: something went wrong" >&2; exit 3']
    outs: [broken.txt]
`,
  });
  const result = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 1);
  assert.equal(result.summary.stages['broken']!.failure!.reason, 'exit-non-zero');
  assert.match(result.summary.stages['broken']!.failure!.message, /exited with code 3/);
  assert.match(readFileSync(join(dir, '.runner/logs/broken.log'), 'utf8'), /on \d+: something went wrong/);
});

test('shell metacharacters in a param execute as nothing on a Slurm node', { skip }, () => {
  const nasty = `$(touch pwned1); \`touch pwned2\` 'q' "q" > pwned3 | touch pwned4`;
  const dir = makeWorkspace({
    'pipeline.yaml': `executor: slurm
slurm: {poll: 250ms}
params: {msg: ${JSON.stringify(nasty)}}
stages:
  echo:
    cmd: [sh, -c, 'printf "%s" "$1" > out.txt', sh, "\${msg}"]
    outs: [out.txt]
`,
  });
  assert.equal(runJson(dir, ['run', 'pipeline.yaml']).status, 0);
  assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), nasty);
  for (const file of ['pwned1', 'pwned2', 'pwned3', 'pwned4']) assert.ok(!existsSync(join(dir, file)), `${file} was created`);
});

test('Ctrl-C cancels the run\'s Slurm jobs and the runner exits 130', { skip }, async () => {
  const dir = makeWorkspace({ 'pipeline.yaml': FAN.replace('part-${item}', 'cancel-${item}'), 'block-cancel-a': '', 'block-cancel-b': '', 'block-cancel-c': '' });
  // --json and stderr kept: if the runner does not exit 130, the message says what it did instead.
  const child = spawn(runnerCommand[0]!, [...runnerCommand.slice(1), 'run', 'pipeline.yaml', '--json'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await waitFor(() => stagePid(dir, 'cancel-a') !== undefined || stagePid(dir, 'cancel-b') !== undefined, 'a job to start', 60_000);
  const pids = ['a', 'b', 'c'].map((item) => stagePid(dir, `cancel-${item}`)).filter((pid) => pid !== undefined);
  assert.equal(child.exitCode, null, `the runner ended before Ctrl-C:\n${output}`);
  child.kill('SIGINT');
  assert.equal(await exited, 130, `the runner's output:\n${output}`);
  const ours = [...squeue().values()].filter((j) => j.name.startsWith('runner:part@'));
  assert.ok(ours.every((j) => j.state !== 'RUNNING' && j.state !== 'PENDING') || ours.length === 0);
  await waitFor(() => pids.every((pid) => !processAlive(pid)), 'the stage processes to end', 60_000);
  assert.ok(!existsSync(join(dir, 'joined.txt')));
});

test('a job cancelled outside the runner is reported with its Slurm state', { skip }, async () => {
  const dir = makeWorkspace({ 'pipeline.yaml': 'executor: slurm\nslurm: {poll: 250ms}\nstages:\n  victim: {cmd: sh stage.sh victim v.txt, outs: [v.txt]}\n', 'block-victim': '' });
  const child = spawn(runnerCommand[0]!, [...runnerCommand.slice(1), 'run', 'pipeline.yaml', '--json'], { cwd: dir });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await waitFor(() => existsSync(join(dir, 'pid-victim')), 'the job to start', 60_000);
  const id = [...squeue()].find(([, j]) => j.name === 'runner:victim' && j.state === 'RUNNING')?.[0];
  assert.ok(id, 'the job is in squeue');
  spawnSync('scancel', [id]);
  assert.equal(await exited, 1);
  const failure = (JSON.parse(stdout) as { stages: Record<string, { failure: { reason: string; message: string } }> }).stages['victim']!.failure;
  assert.equal(failure.reason, 'job-killed');
  assert.match(failure.message, new RegExp(`^Slurm job ${id} ended CANCELLED`));
});

test('a stage over its time limit is killed by Slurm and reported as TIMEOUT', { skip: slowSkip, timeout: 240_000 }, () => {
  const dir = makeWorkspace({ 'pipeline.yaml': 'executor: slurm\nslurm: {poll: 1s}\nstages:\n  slow: {cmd: sleep 600, outs: [never.txt], timeout: 1m}\n' });
  const result = spawnSync(runnerCommand[0]!, [...runnerCommand.slice(1), 'run', 'pipeline.yaml', '--json'], { cwd: dir, encoding: 'utf8', timeout: 230_000 });
  assert.equal(result.status, 1, result.stderr);
  const failure = (JSON.parse(result.stdout) as { stages: Record<string, { failure: { reason: string; message: string } }> }).stages['slow']!.failure;
  assert.equal(failure.reason, 'job-killed');
  assert.match(failure.message, /ended TIMEOUT: it reached its time limit/);
});
