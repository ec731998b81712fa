// A big pipeline file, and what loading it costs. `generateBigPipeline(keys)` writes a pipeline whose params map
// has `keys` keys (90,000 keys: ~5.8 MB, the size that made `runner status` take most of a minute) and a few
// stages declaring some of them. Measured:
//   1. parsing it the way the loader used to: the yaml package's own duplicate-key check (uniqueKeys: true),
//      which compares each key of a map with every key before it — quadratic;
//   2. parsing it as runner/spec/load.ts does now (uniqueKeys: false and one pass with a Set per map);
//   3. `runner status` on it end to end, with no spec cache (a fresh process: the YAML, the schema, the stages).
// Also a generator on its own: `node --import tsx bench/big-pipeline.ts KEYS OUT.yaml`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument } from 'yaml';
import { parseYamlText } from '../runner/spec/load.js';
import type { BenchResult } from './run.js';

const runnerBin = fileURLToPath(new URL('../bin/runner.js', import.meta.url));

export function bigPipelineText(keys: number): string {
  const lines = ['params:'];
  for (let i = 0; i < keys; i++) lines.push(`  key_${String(i).padStart(6, '0')}: "value of param number ${String(i).padStart(6, '0')}, written as text"`);
  lines.push('stages:');
  for (let s = 0; s < 10; s++) {
    lines.push(`  stage_${s}:`, `    cmd: [echo, "\${key_${String(s).padStart(6, '0')}}"]`, `    params: [key_${String(s).padStart(6, '0')}]`, `    outs: [out_${s}.txt]`);
  }
  return lines.join('\n') + '\n';
}

function seconds(fn: () => unknown): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

export async function run(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const keys of [30_000, 90_000]) {
    const text = bigPipelineText(keys);
    const size = `${keys} keys, ${(text.length / 1e6).toFixed(1)} MB`;
    const before = seconds(() => parseDocument(text, { lineCounter: new LineCounter(), prettyErrors: false, uniqueKeys: true }).toJS());
    const after = seconds(() => parseYamlText('big.yaml', text));
    results.push(
      { name: `parse, the yaml package's duplicate-key check (${size})`, value: before, unit: 's', command: 'parseDocument(text, {uniqueKeys: true}).toJS()', note: 'the loader before: quadratic in the keys of one map' },
      { name: `parse as the loader does now (${size})`, value: after, unit: 's', command: "parseYamlText('big.yaml', text)", note: 'uniqueKeys: false, then one pass over the nodes (duplicate keys, aliases) with a Set per map' },
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-big-pipeline-'));
  try {
    mkdirSync(join(dir, '.runner'));
    const text = bigPipelineText(90_000);
    writeFileSync(join(dir, 'p.yaml'), text);
    const status = seconds(() => spawnSync(process.execPath, [runnerBin, 'status', 'p.yaml'], { cwd: dir, stdio: 'ignore' }));
    results.push({ name: `runner status, 90000 keys (${(text.length / 1e6).toFixed(1)} MB), no spec cache`, value: status, unit: 's', command: 'node bin/runner.js status p.yaml', note: 'a fresh process, one run' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [keys, out] = process.argv.slice(2);
  if (!keys || !out) {
    process.stderr.write('usage: node --import tsx bench/big-pipeline.ts KEYS OUT.yaml\n');
    process.exitCode = 2;
  } else {
    writeFileSync(out, bigPipelineText(Number(keys)));
  }
}
