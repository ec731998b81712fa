// Fuzzed pipelines: a seeded generator makes a few hundred malformed variants of one valid pipeline (wrong
// types, bad references, unicode, huge numbers, aliases, deep nesting, truncation, duplicated lines…). Each is
// loaded in-process, as `status` and `run` load it; a sample also goes through the real CLI. Every variant must
// load, or be refused with located diagnostics — never an unexpected exception, a stack trace or a hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { parse, stringify } from 'yaml';
import { DiagnosticError } from '../../runner/spec/diagnostics.js';
import { loadPipeline } from '../../runner/spec/pipeline.js';
import { runCli } from './helpers.js';

const VALID = `params:
  prep: {size: 256, mode: fast}
  train: {lr: 0.001, epochs: 3, layers: [64, 128]}
  splits: [val, test]
profiles:
  quick: {train: {epochs: 1}}
cache: {link: copy}
stages:
  prep:
    desc: prepare the data
    cmd: sh stage.sh prep data/prep.txt --size \${prep.size}
    deps: [stage.sh]
    outs: [data/prep.txt]
    params: [prep]
  train:
    cmd: [sh, stage.sh, train, model/weights.txt, "\${train.lr}"]
    deps: [data/prep.txt, {path: extra.txt, optional: true}]
    outs: [model/weights.txt]
    metrics: [model/metrics.json]
    params: [train.lr, train.epochs]
    env: {SEED: 7}
    resources: {cpus: 1, memory: 1GB}
    timeout: 1h
    retries: 1
  predict:
    foreach: \${splits}
    cmd: sh stage.sh predict preds/\${item}.txt
    deps: [model/weights.txt]
    outs: ["preds/\${item}.txt"]
  sweep:
    matrix: {lr: [1, 2], bs: [8]}
    cmd: 'echo \${item.lr} \${item.bs} > sweep-\${item.lr}.txt'
    shell: true
    outs: ["sweep-\${item.lr}.txt"]
`;

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

/** Values of every awkward kind a person (or a broken generator) might write. */
function oddValue(random: Random): unknown {
  const nested = (depth: number): unknown => (depth === 0 ? 'leaf' : [nested(depth - 1)]);
  return pick(random, [
    () => null,
    () => true,
    () => 0,
    () => -1,
    () => 1.5,
    () => 1e308,
    () => Number.MAX_SAFE_INTEGER * 1000,
    () => '',
    () => ' ',
    () => 'ünïcødé ✓ 🚀 \u202Eevil\u200B',
    () => 'a'.repeat(5000),
    () => '${nope.missing}',
    () => '${prep',
    () => '$${literal}',
    () => '${prep.size}${train.layers}',
    () => '../outside',
    () => '/etc/passwd',
    () => 'p.yaml',
    () => 'p.lock',
    () => '.runner/cache',
    () => '.',
    () => '99999999999999999999h',
    () => '1e400',
    () => '-5s',
    () => [],
    () => {},
    () => [1, [2, [3]]],
    () => ({ path: 'x', optional: 'yes' }),
    () => ({ __proto__: 'x', constructor: 1 }),
    () => nested(60),
    () => 'line\nbreak',
    () => "quote ' and \" and ` and $(touch pwned)",
  ])();
}

/** Every path (list of keys/indices) to a node of a JS value. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const result = [prefix];
  if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) result.push(...paths(child, [...prefix, Array.isArray(value) ? Number(key) : key]));
  }
  return result;
}

function setAt(random: Random, root: Record<string, unknown>, path: (string | number)[], value: unknown, mode: 'set' | 'delete' | 'add-key'): void {
  let node: unknown = root;
  for (const key of path.slice(0, -1)) {
    if (node === null || typeof node !== 'object') return; // an earlier mutation replaced this branch
    node = (node as Record<string | number, unknown>)[key];
  }
  if (node === null || typeof node !== 'object') return;
  const parent = node as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  const target = parent[last];
  if (mode === 'delete') {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else if (mode === 'add-key' && target !== null && typeof target === 'object' && !Array.isArray(target)) {
    (target as Record<string, unknown>)[pick(random, ['dep', 'outz', 'cmd', 'params', 'stages', 'x'])] = value;
  } else {
    parent[last] = value;
  }
}

/** Changes made to the parsed pipeline, written back as YAML. */
function structuralMutation(random: Random): string {
  const data = parse(VALID) as Record<string, unknown>;
  const all = paths(data).filter((p) => p.length > 0);
  for (let n = 1 + Math.floor(random() * 3); n > 0; n--) {
    setAt(random, data, pick(random, all), oddValue(random), pick(random, ['set', 'set', 'set', 'delete', 'add-key'] as const));
  }
  // Stage names of every kind.
  const stages = data['stages'];
  if (random() < 0.15 && stages !== null && typeof stages === 'object' && !Array.isArray(stages)) {
    (stages as Record<string, unknown>)[pick(random, ['a/b', 'a@b', '', ' ', '-x', 'ünï', '__proto__', 'constructor', 'x'.repeat(300)])] = { cmd: 'echo hi' };
  }
  return stringify(data, { aliasDuplicateObjects: false });
}

const LOL = 'x: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n' + 'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill('*' + 'abcdefg'[i]).join(', ')}]\n`).join('');

/** Changes made to the text itself. */
function textualMutation(random: Random): string {
  const lines = VALID.split('\n');
  const line = Math.floor(random() * lines.length);
  return pick(random, [
    () => VALID.slice(0, Math.floor(random() * VALID.length)), // truncated anywhere
    () => [...lines.slice(0, line + 1), lines[line], ...lines.slice(line + 1)].join('\n'), // a line twice
    () => lines.filter((_, i) => i !== line).join('\n'), // a line missing
    () => lines.map((l, i) => (i === line ? l.replace(/^ +/, (s) => s + ' ') : l)).join('\n'), // indentation off
    () => lines.map((l, i) => (i === line ? l.replace(/^ +/, '\t') : l)).join('\n'), // a tab
    () => lines.map((l, i) => (i === line ? `${l} *nope` : l)).join('\n'), // an unresolved alias
    () => lines.map((l, i) => (i === line ? l.replace(/: (.*)$/, ': &anchor $1') : l)).join('\n') + '\nextra: *anchor\n',
    () => `${VALID}lol:\n  ${LOL.trimEnd().replaceAll('\n', '\n  ')}\n`, // an alias bomb
    () => VALID.replace('params:\n', `params:\n  bomb:\n    ${LOL.trimEnd().replaceAll('\n', '\n    ')}\n`),
    () => VALID.replace('prep: {size: 256', `prep: {size: ${'['.repeat(3000)}${']'.repeat(3000)}`), // deep flow nesting
    () => VALID.replace('epochs: 3', `epochs: ${pick(random, ['1e400', '-1e400', '.nan', '.inf', '0x1F', '0o17', '1_000', '~'])}`),
    () => VALID.replace("cmd: 'echo", "cmd: 'echo ${item.lr"), // an unterminated ${
    () => VALID.replace('timeout: 1h', `timeout: ${pick(random, ['600h', '99999999999999999999h', '1e400', '-1', '0', '1h30x', '25d', `${'1'.repeat(60)}x`])}`),
    () => VALID.replace('memory: 1GB', `memory: ${pick(random, ['99999999999999999999GB', '1e400', '-1', '1XB', '2PiB'])}`),
    () => {
      const bytes = Buffer.from(VALID);
      for (let k = 0; k < 3; k++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      return bytes.toString('latin1');
    },
    () => `${VALID}---\nsecond: document\n`,
    () => VALID.replace('stages:', 'stages: !!binary aGVsbG8=\nignored:'),
    () => VALID.replace('desc: prepare the data', 'desc: "unterminated'),
    () => '',
    () => '\uFEFF' + VALID, // a byte-order mark
    () => VALID.replaceAll('\n', '\r\n'),
  ])();
}

const STACK = /\n\s+at .*[(:]\d+|node:internal|\.ts:\d+:\d+\)/;

interface Variant {
  name: string;
  text: string;
}

function variants(count: number): Variant[] {
  const random = seedrandom('runner-spec-fuzz-1');
  return Array.from({ length: count }, (_, index) => {
    const structural = random() < 0.5;
    return { name: `variant ${index} (${structural ? 'structural' : 'textual'})`, text: structural ? structuralMutation(random) : textualMutation(random) };
  });
}

function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'runner-fuzz-'));
  mkdirSync(join(dir, '.runner'));
  writeFileSync(join(dir, 'stage.sh'), 'echo "$@"\n');
  return dir;
}

test('a few hundred malformed pipelines: each loads or is refused with located diagnostics', { timeout: 600_000 }, async () => {
  const dir = workspace();
  let refused = 0;
  try {
    for (const { name, text } of variants(400)) {
      writeFileSync(join(dir, 'p.yaml'), text);
      const started = performance.now();
      try {
        await loadPipeline(join(dir, 'p.yaml'));
      } catch (cause) {
        if (!(cause instanceof DiagnosticError)) assert.fail(`${name}: ${String((cause as Error).stack)}\n--- pipeline ---\n${text.slice(0, 2000)}`);
        refused++;
        for (const diagnostic of cause.diagnostics) {
          assert.ok(diagnostic.location, `${name}: unlocated "${diagnostic.message}"\n--- pipeline ---\n${text.slice(0, 2000)}`);
          assert.ok(diagnostic.location.line >= 1 && diagnostic.location.col >= 1, `${name}: ${JSON.stringify(diagnostic.location)}`);
          assert.doesNotMatch(diagnostic.message, /\bundefined\b|\[object Object\]/, `${name}: ${diagnostic.message}`);
        }
      }
      // A hang guard only: loading a few kilobytes takes milliseconds.
      assert.ok(performance.now() - started < 30_000, `${name}: took ${performance.now() - started} ms`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The mutations must mostly break the pipeline, or the test tests little.
  assert.ok(refused > 200 && refused < 400, `${refused} of 400 variants were refused`);
});

test('a sample of them through the real CLI: status and run --dry-run exit 0 or 2, with no stack trace', { timeout: 600_000 }, async () => {
  // Spawning costs a second a variant on two cores: a sample, weighted towards variants that load (those go
  // on to the plan: hashing, the lock file, the run-cache), the rest refused ones.
  const sample = variants(400);
  const loads: Variant[] = [];
  const refusals: Variant[] = [];
  const probe = workspace();
  for (const variant of sample) {
    writeFileSync(join(probe, 'p.yaml'), variant.text);
    const loaded = await loadPipeline(join(probe, 'p.yaml')).then(() => true, () => false);
    (loaded ? loads : refusals).push(variant);
  }
  rmSync(probe, { recursive: true, force: true });
  const every = (list: Variant[], n: number) => list.filter((_, index) => index % Math.max(1, Math.floor(list.length / n)) === 0).slice(0, n);
  for (const { name, text } of [...every(loads, 8), ...every(refusals, 4)]) {
    const dir = workspace();
    try {
      writeFileSync(join(dir, 'p.yaml'), text);
      for (const args of [['status', 'p.yaml'], ['run', '--dry-run', 'p.yaml']]) {
        const result = runCli(dir, args);
        assert.ok(result.status === 0 || result.status === 2, `${name} ${args[0]}: exit ${result.status}\n${result.stderr}`);
        assert.doesNotMatch(result.stderr, STACK, `${name} ${args[0]}`);
        assert.doesNotMatch(result.stderr, /unexpected error/, `${name} ${args[0]}`);
        if (result.status === 2) assert.match(result.stderr, /^p\.yaml:\d+:\d+ error: /, `${name} ${args[0]}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
