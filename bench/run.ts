// `npm run bench [-- name…]`: runs the named benchmarks (default: all), prints each figure, and rewrites each
// benchmark's own section of BENCHMARKS.md (between <!-- bench:NAME --> and <!-- /bench:NAME -->), keeping
// every other section as it is.
//
// Adding a benchmark: a module in bench/ exporting `run(): Promise<BenchResult[]>`, plus one line in
// BENCHMARKS below.
import { existsSync, readFileSync } from 'node:fs';
import { cpus, availableParallelism, totalmem, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import writeFileAtomic from 'write-file-atomic';

/** One measured figure. */
export interface BenchResult {
  /** What was measured, e.g. "sha256 of a 1 GiB file, page cache warm". */
  name: string;
  value: number;
  unit: string;
  /** The goal it is held to, e.g. "≥ 1000 MB/s", when there is one. */
  target?: string;
  /** Whether the target is met (omit when there is no target). */
  ok?: boolean;
  /** The exact command or call measured, when it is more specific than the module's. */
  command?: string;
  note?: string;
}

export interface BenchModule {
  run(): Promise<BenchResult[]>;
}

const BENCHMARKS: Record<string, () => Promise<BenchModule>> = {
  'runner-hash': () => import('./runner-hash.js'),
  'runner-peers': () => import('./runner-peers.js'),
  'runner-slurm': () => import('./runner-slurm.js'),
  'runner-big-pipeline': () => import('./big-pipeline.js'),
  'code-deps': () => import('./code-deps-status.js'),
  'cache-restore': () => import('./cache-restore.js'),
  data: () => import('./data-chain.js'),
  postprocess: () => import('./postprocess.js'),
  'host-boxes': () => import('./host-boxes.js'),
  model: () => import('./model-step.js'),
  'model-train': () => import('./model-train.js'),
  'model-train-small': () => import('./model-train.js').then((m) => ({ run: m.runSmall })),
  'model-train-r101': () => import('./model-train.js').then((m) => ({ run: m.runR101 })),
  predict: () => import('./predict.js'),
  backend: () => import('./model-kernels.js'),
  webgpu: () => import('./webgpu-recorded.js'),
  'webgpu-dispatches': () => import('./webgpu-dispatches.js'),
  remote: () => import('./remote.js'),
  'file-creation': () => import('./file-creation.js'),
};

const benchmarksFile = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));

export function machineLine(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown cpu';
  const gib = (totalmem() / 2 ** 30).toFixed(0);
  // The load average says how much the (shared) machine was doing at the time: figures taken under load are slower.
  const load = loadavg()[0]!.toFixed(1);
  return `${cpu}, ${availableParallelism()} cores, ${gib} GiB, Node ${process.version}, ${process.platform}-${process.arch}, load average ${load} at the start`;
}

function formatValue(r: BenchResult): string {
  if (r.value !== 0 && Math.abs(r.value) < 1e-3) return `${r.value.toExponential(1)} ${r.unit}`.trim();
  if (Number.isInteger(r.value) && (r.unit === '' || r.unit.startsWith('of '))) return `${r.value} ${r.unit}`.trim(); // counts
  const digits = Math.abs(r.value) >= 100 ? 0 : Math.abs(r.value) >= 10 ? 1 : Math.abs(r.value) >= 1 ? 2 : 3;
  return `${r.value.toFixed(digits)} ${r.unit}`;
}

function sectionText(name: string, results: BenchResult[], machine: string): string {
  const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
  const lines = [
    `<!-- bench:${name} -->`,
    `### ${name}`,
    '',
    `Command: \`npm run bench -- ${name}\` — ${new Date().toISOString().slice(0, 10)}, ${machine}.`,
    '',
    '| measurement | value | target | notes |',
    '|---|---|---|---|',
    ...results.map((r) => {
      const target = r.target ? `${r.target} ${r.ok === undefined ? '' : r.ok ? '(met)' : '(**missed**)'}` : '';
      const notes = [r.command ? `\`${r.command}\`` : '', r.note ?? ''].filter(Boolean).join(' — ');
      return `| ${cell(r.name)} | ${formatValue(r)} | ${cell(target.trim())} | ${cell(notes)} |`;
    }),
    `<!-- /bench:${name} -->`,
  ];
  return lines.join('\n');
}

/** Replaces the section between the markers, or appends it; other sections are kept byte for byte. */
export function replaceSection(document: string, name: string, section: string): string {
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const from = document.indexOf(start);
  const to = document.indexOf(end);
  if (from >= 0 && to > from) return document.slice(0, from) + section + document.slice(to + end.length);
  const base = document.trimEnd();
  return (base ? base + '\n\n' : '# Benchmarks\n\nWritten by `npm run bench`; each section is rewritten by its benchmark.\n\n') + section + '\n';
}

export function writeSection(name: string, results: BenchResult[], machine: string): void {
  const current = existsSync(benchmarksFile) ? readFileSync(benchmarksFile, 'utf8') : '';
  writeFileAtomic.sync(benchmarksFile, replaceSection(current, name, sectionText(name, results, machine)));
}

async function main(argv: string[]): Promise<number> {
  const unknown = argv.filter((name) => !(name in BENCHMARKS));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown benchmark ${unknown.map((n) => `"${n}"`).join(', ')}; known: ${Object.keys(BENCHMARKS).join(', ')}\n`);
    return 2;
  }
  const names = argv.length > 0 ? argv : Object.keys(BENCHMARKS);
  process.stderr.write(`machine: ${machineLine()}\n`);
  for (const name of names) {
    const machine = machineLine(); // per benchmark: the load average changes during a long run
    process.stderr.write(`== ${name}\n`);
    const results = await (await BENCHMARKS[name]!()).run();
    for (const r of results) process.stderr.write(`  ${r.name}: ${formatValue(r)}${r.target ? ` (target ${r.target}${r.ok === false ? ', MISSED' : ''})` : ''}\n`);
    writeSection(name, results, machine);
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main(process.argv.slice(2));
}
