// Per-job overhead of the Slurm executor against the local one, on trivial stages (`touch out/K`), through the
// built CLI (`npm run build`, then `node bin/runner.js`):
//   chain-10    r0 -> r1 -> … -> r9: every stage waits for the one before, so each pays the full round trip
//               (submit window, sbatch, Slurm starting the job, the next squeue poll)
//   fanout-200  200 independent stages: one job array, so the cost per stage is what batching leaves
// Needs a reachable Slurm (.ci/slurm-setup.sh); reports why it measured nothing otherwise. The poll interval
// is set to 0.5 s here (the default, 5 s, is kinder to a shared controller and adds up to 5 s per stage).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './run.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const runnerBin = join(repo, 'bin/runner.js');
const POLL = '500ms';

function pipeline(kind: 'chain' | 'fanout', n: number, executor: 'local' | 'slurm'): string {
  const lines = [`executor: ${executor}`, `slurm: {poll: ${POLL}}`, 'stages:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  r${i}:`, `    cmd: [touch, out/${i}]`);
    if (kind === 'chain' && i > 0) lines.push(`    deps: [out/${i - 1}]`);
    lines.push(`    outs: [out/${i}]`);
  }
  return lines.join('\n') + '\n';
}

/** Seconds for one cold `runner run` in a fresh workspace. */
function coldRun(yaml: string): { seconds: number; ok: boolean; detail: string } {
  const dir = mkdtempSync(join(tmpdir(), 'bench-slurm-'));
  mkdirSync(join(dir, '.runner'));
  mkdirSync(join(dir, 'out'));
  writeFileSync(join(dir, 'pipeline.yaml'), yaml);
  const t = performance.now();
  const child = spawnSync(process.execPath, [runnerBin, 'run', 'pipeline.yaml'], { cwd: dir, encoding: 'utf8', timeout: 600_000 });
  const seconds = (performance.now() - t) / 1000;
  return { seconds, ok: child.status === 0, detail: `exit ${child.status ?? child.signal}: ${(child.stderr || child.stdout).trim().split('\n').slice(-2).join(' / ')}` };
}

export async function run(): Promise<BenchResult[]> {
  const sinfo = spawnSync('sinfo', ['-h', '-o', '%T'], { encoding: 'utf8' });
  if (sinfo.status !== 0 || !/idle|mix|alloc/.test(sinfo.stdout)) {
    return [{ name: 'Slurm executor overhead', value: Number.NaN, unit: 's', note: 'no Slurm cluster reachable: run .ci/slurm-setup.sh as root first' }];
  }
  spawnSync('npm', ['run', 'build'], { cwd: repo, encoding: 'utf8' });
  if (!existsSync(join(repo, 'dist/runner/executors/slurm.js'))) {
    return [{ name: 'Slurm executor overhead', value: Number.NaN, unit: 's', note: 'npm run build made no dist/runner/executors/slurm.js' }];
  }
  const results: BenchResult[] = [];
  for (const [kind, n] of [['chain', 10], ['fanout', 200]] as const) {
    const local = coldRun(pipeline(kind, n, 'local'));
    const slurm = coldRun(pipeline(kind, n, 'slurm'));
    const command = `node bin/runner.js run pipeline.yaml  (${kind}-${n} of touch stages, cold, default -j)`;
    if (!local.ok || !slurm.ok) {
      results.push({ name: `${kind}-${n}: a run failed`, value: Number.NaN, unit: 's', command, note: (local.ok ? slurm : local).detail });
      continue;
    }
    results.push({ name: `${kind}-${n}, local executor: seconds per stage`, value: local.seconds / n, unit: 's', command });
    results.push({ name: `${kind}-${n}, Slurm executor (poll ${POLL}): seconds per stage`, value: slurm.seconds / n, unit: 's', command });
    results.push({
      name: `${kind}-${n}: Slurm overhead per stage over local`,
      value: (slurm.seconds - local.seconds) / n,
      unit: 's',
      command,
      note: `whole run: local ${local.seconds.toFixed(1)} s, Slurm ${slurm.seconds.toFixed(1)} s`,
    });
  }
  return results;
}
