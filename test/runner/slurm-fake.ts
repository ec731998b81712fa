// A fake Slurm for tests where no cluster is reachable: `sbatch`, `squeue` and `scancel` as small node scripts
// in a temp bin dir put first on PATH. They record every call (argv, start and end time) in calls.jsonl and
// keep each array task's state in tasks/<id>.json. sbatch starts a detached worker that runs the array's
// tasks at once (each in its own process group, output appended to --output with %a replaced) and enforces
// --time with FAKE_SLURM_MINUTE_MS milliseconds per minute (state TIMEOUT, reason TimeLimit), so the time
// limit path is tested in a second, not a minute. FAKE_SLURM_SBATCH_ERROR makes sbatch fail with that text.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const COMMON = `
import { appendFileSync, readFileSync, writeFileSync, existsSync, readdirSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
const dir = process.env.FAKE_SLURM_DIR;
mkdirSync(join(dir, 'tasks'), { recursive: true });
const started = Date.now();
const record = (cmd, extra = {}) => appendFileSync(join(dir, 'calls.jsonl'), JSON.stringify({ cmd, argv: process.argv.slice(2), start: started, end: Date.now(), ...extra }) + '\\n');
const taskFile = (id) => join(dir, 'tasks', id + '.json');
const readTask = (id) => JSON.parse(readFileSync(taskFile(id), 'utf8'));
const writeTask = (id, task) => { const tmp = taskFile(id) + '.' + process.pid + '.tmp'; writeFileSync(tmp, JSON.stringify(task)); renameSync(tmp, taskFile(id)); };
const flag = (name) => process.argv.slice(2).find((a) => a.startsWith('--' + name + '='))?.slice(name.length + 3);
`;

const SBATCH = `#!/usr/bin/env node
${COMMON}
if (process.env.FAKE_SLURM_SBATCH_ERROR) { record('sbatch'); process.stderr.write(process.env.FAKE_SLURM_SBATCH_ERROR + '\\n'); process.exit(1); }
const counter = join(dir, 'next-id');
const id = existsSync(counter) ? Number(readFileSync(counter, 'utf8')) : 100;
writeFileSync(counter, String(id + 1));
const [, last] = (flag('array') ?? '0-0').split('-').map(Number);
for (let i = 0; i <= last; i++) writeTask(id + '_' + i, { state: 'PENDING', reason: 'None' });
const { spawn } = await import('node:child_process');
const args = process.argv.slice(2);
spawn(process.execPath, [join(dir, 'bin', 'worker.mjs'), String(id), String(last + 1), flag('output') ?? '/dev/null', args[args.length - 1], flag('time') ?? '', flag('chdir') ?? '.'], { detached: true, stdio: 'ignore', env: process.env }).unref();
record('sbatch', { id: String(id) });
process.stdout.write(id + '\\n');
`;

const WORKER = `
${COMMON}
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
const [id, count, output, script, time, cwd] = process.argv.slice(2);
const minuteMs = Number(process.env.FAKE_SLURM_MINUTE_MS ?? 60000);
for (let i = 0; i < Number(count); i++) {
  const taskId = id + '_' + i;
  if (readTask(taskId).state !== 'PENDING') continue; // cancelled before it started
  const out = openSync(output.replaceAll('%a', String(i)), 'a');
  const child = spawn('/bin/sh', [script], { cwd, detached: true, stdio: ['ignore', out, out],
    env: { ...process.env, SLURM_JOB_ID: String(Number(id) + 1 + i), SLURM_ARRAY_JOB_ID: id, SLURM_ARRAY_TASK_ID: String(i) } });
  writeTask(taskId, { state: 'RUNNING', reason: 'None', pid: child.pid });
  let timer;
  if (time) timer = setTimeout(() => {
    writeTask(taskId, { state: 'TIMEOUT', reason: 'TimeLimit' });
    try { process.kill(-child.pid, 'SIGKILL'); } catch {}
  }, Number(time) * minuteMs);
  child.on('exit', (code) => {
    clearTimeout(timer);
    if (readTask(taskId).state === 'RUNNING') writeTask(taskId, code === 0 ? { state: 'COMPLETED', reason: 'None' } : { state: 'FAILED', reason: 'NonZeroExitCode' });
  });
}
`;

const SQUEUE = `#!/usr/bin/env node
${COMMON}
const arrays = (flag('jobs') ?? '').split(',').filter(Boolean);
const lines = [];
for (const name of readdirSync(join(dir, 'tasks')).filter((n) => n.endsWith('.json')).sort()) {
  const taskId = name.slice(0, -5);
  if (!arrays.includes(taskId.split('_')[0])) continue;
  const task = readTask(taskId);
  lines.push(taskId + '|' + task.state + '|' + task.reason);
}
record('squeue');
if (lines.length === 0) { process.stderr.write('slurm_load_jobs error: Invalid job id specified\\n'); process.exit(1); }
process.stdout.write(lines.join('\\n') + '\\n');
`;

const SCANCEL = `#!/usr/bin/env node
${COMMON}
for (const taskId of process.argv.slice(2)) {
  if (!existsSync(taskFile(taskId))) continue;
  const task = readTask(taskId);
  if (task.state !== 'PENDING' && task.state !== 'RUNNING') continue;
  writeTask(taskId, { state: 'CANCELLED', reason: 'None' });
  if (task.pid) try { process.kill(-task.pid, 'SIGTERM'); } catch {}
}
record('scancel');
`;

export interface FakeCall {
  cmd: 'sbatch' | 'squeue' | 'scancel';
  argv: string[];
  start: number;
  end: number;
  id?: string;
}

export interface FakeSlurm {
  dir: string;
  /** Environment for the runner: PATH with the fakes first, FAKE_SLURM_DIR. */
  env: Record<string, string>;
  calls(cmd?: FakeCall['cmd']): FakeCall[];
  /** Task id (`100_0`) -> state, as squeue would print it. */
  states(): Record<string, string>;
}

export function fakeSlurm(extraEnv: Record<string, string> = {}): FakeSlurm {
  const dir = mkdtempSync(join(tmpdir(), 'fake-slurm-'));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  mkdirSync(join(dir, 'tasks'));
  for (const [name, text] of Object.entries({ sbatch: SBATCH, squeue: SQUEUE, scancel: SCANCEL })) writeFileSync(join(bin, name), text, { mode: 0o755 });
  writeFileSync(join(bin, 'worker.mjs'), WORKER);
  const env = { PATH: `${bin}:${process.env['PATH'] ?? ''}`, FAKE_SLURM_DIR: dir, ...extraEnv };
  return {
    dir,
    env,
    calls(cmd) {
      const file = join(dir, 'calls.jsonl');
      const all = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as FakeCall) : [];
      return cmd ? all.filter((c) => c.cmd === cmd) : all;
    },
    states() {
      const states: Record<string, string> = {};
      for (const name of readdirSync(join(dir, 'tasks')).filter((n) => n.endsWith('.json'))) {
        try {
          states[name.slice(0, -5)] = (JSON.parse(readFileSync(join(dir, 'tasks', name), 'utf8')) as { state: string }).state;
        } catch {
          // being rewritten: the next look sees it
        }
      }
      return states;
    },
  };
}

/**
 * Three independent stages and one that joins them, on Slurm with the given `slurm:` settings (YAML flow map);
 * a fan-out stage waits while `block-part-NAME` exists (test/runner/helpers.ts STAGE_SH).
 */
export function fanPipeline(slurmSettings: string): string {
  return `executor: slurm
slurm: ${slurmSettings}
stages:
  part:
    foreach: [a, b, c]
    cmd: sh stage.sh part-\${item} parts/\${item}.txt
    outs: ["parts/\${item}.txt"]
  join:
    cmd: sh stage.sh join joined.txt
    deps: [parts]
    outs: [joined.txt]
`;
}
