// What following code costs `runner status`: the no-op status of the 1000-stage chain (no JS/TS deps: the
// closure must cost nothing there) and of the dsb2018 pipeline (every stage's closure: ~80 files and a few
// packages each), both through the built CLI. The dsb2018 pipeline runs in a temp workspace as a variant whose
// commands only create the declared outs: same deps and closures, so the status afterwards is a real no-op.
//
// Before/after in the same minute: build the base commit somewhere (`git worktree add B <commit>; cd B;
// npm run build`) and set BENCH_BASELINE=B; each figure is then taken for both, alternating A/B runs.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import type { BenchResult } from './run.js';
import { pipelineYaml } from './runner-peers.js';
import { median } from './timing.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const REPEATS = 15;

export interface Build {
  label: string;
  /** dist/runner/cli.js of the build */
  cli: string;
  /** its pipelines/dsb2018.yaml */
  dsb2018: string;
}

function builds(): Build[] {
  spawnSync('npm', ['run', 'build'], { cwd: repo, encoding: 'utf8' });
  const own = { label: 'this commit', cli: join(repo, 'dist/runner/cli.js'), dsb2018: join(repo, 'pipelines/dsb2018.yaml') };
  const base = process.env['BENCH_BASELINE'];
  if (!base) return [own];
  const label = `baseline ${process.env['BENCH_BASELINE_NAME'] ?? base}`;
  return [{ label, cli: join(base, 'dist/runner/cli.js'), dsb2018: join(base, 'pipelines/dsb2018.yaml') }, own];
}

/**
 * CPU seconds (user + system) of this process's waited-for children, from /proc/self/stat (cutime, cstime; in
 * ticks of 1/100 s): on a shared machine under load, CPU time compares two builds better than wall time.
 */
function childrenCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

interface Timing {
  wall: number;
  cpu: number;
}

function timed(argv: string[], cwd: string): Timing {
  const cpu = childrenCpuSeconds();
  const t = performance.now();
  const child = spawnSync(process.execPath, argv, { cwd, encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`${argv.join(' ')}: exit ${child.status}: ${child.stderr.slice(-400)}`);
  return { wall: (performance.now() - t) / 1000, cpu: childrenCpuSeconds() - cpu };
}

function seconds(argv: string[], cwd: string): number {
  return timed(argv, cwd).wall;
}

/** The dsb2018 pipeline with each command replaced by one that creates its outs (dirs, or files with a suffix). */
function outsOnlyVariant(yamlText: string): string {
  const doc = parseDocument(yamlText);
  const stages = doc.get('stages') as { items: { key: { value: string }; value: { get(k: string): unknown; set(k: string, v: unknown): void } }[] };
  for (const item of stages.items) {
    const list = (field: string): string[] => ((item.value.get(field) as { toJSON(): string[] } | undefined)?.toJSON() ?? []);
    const script = [
      ...list('outs').map((p) => (/\.\w+$/.test(p) ? `mkdir -p "$(dirname ${p})" && echo x > ${p}` : `mkdir -p ${p} && echo x > ${p}/part`)),
      ...list('metrics').map((p) => `mkdir -p "$(dirname ${p})" && echo '{}' > ${p}`),
    ].join(' && ');
    item.value.set('cmd', ['sh', '-c', script || 'true']);
  }
  return doc.toString();
}

export function dsb2018Workspace(build: Build): string {
  const ws = mkdtempSync(join(tmpdir(), 'bench-dsb2018-'));
  for (const dir of ['bin', 'stages']) cpSync(join(repo, dir), join(ws, dir), { recursive: true });
  cpSync(join(repo, 'package.json'), join(ws, 'package.json'));
  symlinkSync(join(repo, 'node_modules'), join(ws, 'node_modules'));
  mkdirSync(join(ws, '.runner'));
  mkdirSync(join(ws, 'pipelines'));
  writeFileSync(join(ws, 'pipelines/dsb2018.yaml'), outsOnlyVariant(readFileSync(build.dsb2018, 'utf8')));
  seconds([build.cli, 'run', 'pipelines/dsb2018.yaml', '--workspace', ws], ws);
  seconds([build.cli, 'status', 'pipelines/dsb2018.yaml', '--workspace', ws], ws); // stat-cache records too young at run time
  return ws;
}

function chainWorkspace(): string {
  const ws = mkdtempSync(join(tmpdir(), 'bench-chain-'));
  mkdirSync(join(ws, '.runner'));
  mkdirSync(join(ws, 'out'));
  writeFileSync(join(ws, 'pipeline.yaml'), pipelineYaml('chain', 1000));
  return ws;
}

/** Alternating runs of each build's status, so load on the shared machine hits both alike; medians. */
function alternate(builds: Build[], argvOf: (b: Build) => string[], cwdOf: (b: Build) => string): Timing[] {
  const times = builds.map(() => [] as Timing[]);
  for (let i = 0; i < REPEATS; i++) builds.forEach((b, k) => times[k]!.push(timed(argvOf(b), cwdOf(b))));
  return times.map((t) => ({ wall: median(t.map((x) => x.wall)), cpu: median(t.map((x) => x.cpu)) }));
}

export async function run(): Promise<BenchResult[]> {
  const all = builds();
  if (!all.every((b) => existsSync(b.cli))) return [{ name: `not measured: no build at ${all.map((b) => b.cli).join(', ')}`, value: 0, unit: 's' }];
  const results: BenchResult[] = [];
  const chain = chainWorkspace();
  const dsb = new Map<Build, string>();
  try {
    for (const b of all) {
      seconds([b.cli, 'run', 'pipeline.yaml', '--workspace', chain], chain); // one lock for both: same keys (no code deps)
      dsb.set(b, dsb2018Workspace(b));
    }
    const chainTimes = alternate(all, (b) => [b.cli, 'status', 'pipeline.yaml', '--workspace', chain], () => chain);
    const dsbTimes = alternate(all, (b) => [b.cli, 'status', 'pipelines/dsb2018.yaml', '--workspace', dsb.get(b)!], (b) => dsb.get(b)!);
    all.forEach((b, k) => {
      const chainT = chainTimes[k]!;
      const dsbT = dsbTimes[k]!;
      results.push({ name: `chain-1000 no-op status, ${b.label} (median of ${REPEATS})`, value: chainT.wall, unit: 's', command: 'node dist/runner/cli.js status pipeline.yaml', note: `CPU ${chainT.cpu.toFixed(2)} s` });
      results.push({
        name: `dsb2018 no-op status, ${b.label} (median of ${REPEATS})`, value: dsbT.wall, unit: 's', command: 'node dist/runner/cli.js status pipelines/dsb2018.yaml', note: `CPU ${dsbT.cpu.toFixed(2)} s`,
        ...(b.label === 'this commit' ? { target: '≤ 0.5 s', ok: dsbT.wall <= 0.5 } : {}),
      });
    });
  } finally {
    rmSync(chain, { recursive: true, force: true });
    for (const ws of dsb.values()) rmSync(ws, { recursive: true, force: true });
  }
  return results;
}
