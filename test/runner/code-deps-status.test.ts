// Stage keys that follow code, through the real CLI: status names what changed in a JS/TS dep's import closure
// (with the chain of importers), a package version bump, a removed file; the lock file records the closure;
// `imports: false` opts a dep out; `runner deps` prints the closure; warnings come with file and line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeWorkspace, runCli, runs } from './helpers.js';

const PIPELINE = `stages:
  build:
    cmd: sh stage.sh build out/build.txt
    deps: [main.ts]
    outs: [out/build.txt]
  other:
    cmd: sh stage.sh other out/other.txt
    deps: [other.ts]
    outs: [out/other.txt]
`;

function codeWorkspace(pipeline = PIPELINE): string {
  return makeWorkspace({
    'pipeline.yaml': pipeline,
    'main.ts': "import { a } from './lib/a.js';\nimport tf from '@tensorflow/tfjs';\nconsole.log(a, tf);\n",
    'lib/a.ts': "export { b as a } from './b.js';\n",
    'lib/b.ts': 'export const b = 1;\n',
    'other.ts': "import { b } from './lib/b.js';\nconsole.log(b);\n",
    'node_modules/@tensorflow/tfjs/package.json': JSON.stringify({ name: '@tensorflow/tfjs', version: '4.22.0' }),
  });
}

function status(dir: string): string {
  const result = runCli(dir, ['status', 'pipeline.yaml']);
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

function run(dir: string): void {
  const result = runCli(dir, ['run', 'pipeline.yaml']);
  assert.equal(result.status, 0, result.stdout + result.stderr);
}

test('an edit two imports deep makes the stage stale, naming the file and who imports it; other stages stay fresh', () => {
  const dir = codeWorkspace();
  run(dir);
  assert.match(status(dir), /all 2 stages fresh/);
  writeFileSync(join(dir, 'lib/a.ts'), "export { b as a } from './b.js';\n// edited\n");
  const text = status(dir);
  assert.match(text, /build: stale\n {4}code changed: lib\/a\.ts \(imported by main\.ts\)\n/);
  assert.match(text, /other: fresh/);
  writeFileSync(join(dir, 'lib/b.ts'), 'export const b = 2;\n');
  const both = status(dir);
  assert.match(both, /code changed: lib\/b\.ts \(imported by lib\/a\.ts ← main\.ts\)/);
  assert.match(both, /other: stale\n {4}code changed: lib\/b\.ts \(imported by other\.ts\)/);
  run(dir);
  assert.deepEqual(runs(dir).sort(), ['build', 'build', 'other', 'other']);
});

test('a package version bump and a removed import are reasons; the lock file records the closure sorted, and a no-op run rewrites nothing', () => {
  const dir = codeWorkspace();
  run(dir);
  const lockFile = join(dir, 'pipeline.lock');
  const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as { stages: Record<string, { code: { files: Record<string, string>; packages: Record<string, string> } }> };
  assert.deepEqual(Object.keys(lock.stages['build']!.code.files), ['lib/a.ts', 'lib/b.ts']);
  assert.deepEqual(lock.stages['build']!.code.packages, { '@tensorflow/tfjs': '4.22.0' });
  const before = readFileSync(lockFile, 'utf8');
  run(dir);
  assert.equal(readFileSync(lockFile, 'utf8'), before);

  writeFileSync(join(dir, 'node_modules/@tensorflow/tfjs/package.json'), JSON.stringify({ name: '@tensorflow/tfjs', version: '4.23.0' }));
  assert.match(status(dir), /build: stale\n {4}package changed: @tensorflow\/tfjs 4\.22\.0 -> 4\.23\.0\n/);
  run(dir);

  writeFileSync(join(dir, 'main.ts'), "import tf from '@tensorflow/tfjs';\nconsole.log(tf);\n");
  rmSync(join(dir, 'lib/a.ts'));
  const text = status(dir);
  assert.match(text, /code changed: main\.ts\n {4}code removed: lib\/a\.ts\n {4}code removed: lib\/b\.ts\n/);
});

test('an unresolved import is a warning with file and line and enters the key: the file appearing later makes the stage stale', () => {
  const dir = codeWorkspace();
  writeFileSync(join(dir, 'other.ts'), "import { b } from './lib/b.js';\n\nimport { later } from './later.js';\nconst name = 'x';\nawait import(name);\n");
  run(dir);
  const text = status(dir);
  assert.match(text, /all 2 stages fresh/);
  assert.match(text, /warning: other\.ts:3: import "\.\/later\.js" resolves to nothing/);
  assert.match(text, /warning: other\.ts:5: import\(name\): the module it loads can't be known/);
  writeFileSync(join(dir, 'later.ts'), 'export const later = 1;\n');
  assert.match(status(dir), /other: stale\n {4}code added: later\.ts \(imported by other\.ts\)\n {4}import resolved: other\.ts -> \.\/later\.js\n/);
});

test('a syntax error in a code dep is a located warning, not a stack trace', () => {
  const dir = codeWorkspace();
  writeFileSync(join(dir, 'lib/a.ts'), "export { b as a } from './b.js';\nimport { from 'x';\nconst s = `open\n");
  const result = runCli(dir, ['status', 'pipeline.yaml']);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /warning: lib\/a\.ts:\d+: syntax error, imports not followed/);
  assert.doesNotMatch(result.stdout + result.stderr, /at .*\.ts:\d+:\d+\)/);
});

test('{path, imports: false} keys the file by its own content only', () => {
  const dir = codeWorkspace(PIPELINE.replace('deps: [main.ts]', 'deps: [{path: main.ts, imports: false}]'));
  run(dir);
  writeFileSync(join(dir, 'lib/a.ts'), '// edited\n');
  assert.match(status(dir), /build: fresh/);
  const lock = JSON.parse(readFileSync(join(dir, 'pipeline.lock'), 'utf8')) as { stages: Record<string, { code?: unknown }> };
  assert.equal(lock.stages['build']!.code, undefined);
});

test('runner deps prints the whole closure with the chain to each file; --json gives the same data', () => {
  const dir = codeWorkspace();
  const text = runCli(dir, ['deps', 'pipeline.yaml', 'build']);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /declared: main\.ts/);
  assert.match(text.stdout, /lib\/b\.ts {2}← lib\/a\.ts ← main\.ts/);
  assert.match(text.stdout, /packages \(1\): @tensorflow\/tfjs@4\.22\.0/);
  const json = runCli(dir, ['deps', 'pipeline.yaml', 'build', '--json']);
  const parsed = JSON.parse(json.stdout) as { stages: { build: { code: { files: Record<string, string> } } } };
  assert.deepEqual(Object.keys(parsed.stages.build.code.files), ['lib/a.ts', 'lib/b.ts']);
  const unknown = runCli(dir, ['deps', 'pipeline.yaml', 'nope']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown stage "nope"/);
});

test('status, status --json and run --dry-run --json print the same reasons (one printer) and agree on the verdict', () => {
  const dir = codeWorkspace();
  run(dir);
  writeFileSync(join(dir, 'lib/b.ts'), 'export const b = 3;\n');
  const text = status(dir);
  const json = JSON.parse(runCli(dir, ['status', 'pipeline.yaml', '--json']).stdout) as { stages: Record<string, { status: string; reasons: string[] }> };
  const dry = JSON.parse(runCli(dir, ['run', 'pipeline.yaml', '--dry-run', '--json']).stdout) as { stages: Record<string, { plan: string; reasons: string[] }> };
  for (const stage of ['build', 'other']) {
    const lines = json.stages[stage]!.reasons;
    assert.ok(lines.length > 0);
    assert.deepEqual(dry.stages[stage]!.reasons, lines);
    for (const line of lines) assert.ok(text.includes(`    ${line}\n`), `${line} not in:\n${text}`);
    assert.equal(json.stages[stage]!.status, 'stale');
    assert.equal(dry.stages[stage]!.plan, 'run');
  }
});
