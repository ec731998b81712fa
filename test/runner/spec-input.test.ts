// Hostile input to the runner: each test is a reproduction of a way bad input got past the loader (a stack
// trace, a deleted pipeline, a timer that fired at once, a param pasted into a shell) plus others of its class.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LockWriter } from '../../runner/lock-writer.js';
import { describeFailure, describeUnexpected } from '../../runner/failure.js';
import { longTimeout } from '../../runner/executors/local.js';
import { DiagnosticError, formatDiagnostic } from '../../runner/spec/diagnostics.js';
import { interpolateText, scopeLookup, shellQuote } from '../../runner/spec/interpolate.js';
import { applySets } from '../../runner/spec/params.js';
import { loadPipeline } from '../../runner/spec/pipeline.js';
import { parseDuration, parseSize } from '../../runner/spec/units.js';
import { makeWorkspace, runCli } from './helpers.js';

/** The diagnostics of loading `text` as p.yaml (with `files` beside it), paths relative to the workspace. */
async function refusal(text: string, files: Record<string, string> = {}, options = {}): Promise<string> {
  const dir = makeWorkspace({ ...files, 'p.yaml': text });
  try {
    await loadPipeline(join(dir, 'p.yaml'), options);
  } catch (cause) {
    if (cause instanceof DiagnosticError) return cause.diagnostics.map(formatDiagnostic).join('\n').replaceAll(dir + '/', '');
    throw cause;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.fail('expected the pipeline to be refused');
}

const STACK = /\n\s+at .*\(|\.ts:\d+:\d+\)|node:internal/;

test('an out that is or holds the pipeline, its lock file, its params file or the cache folder is refused', async () => {
  const stage = (outs: string, extra = '') => `${extra}stages:\n  a:\n    cmd: x\n    outs: ${outs}\n`;
  assert.match(await refusal(stage('[o2, p.yaml]')), /^p\.yaml:4:16 error: out "p\.yaml" of stage "a" is the pipeline file \(p\.yaml\)/);
  assert.match(await refusal(stage('[p.lock]')), /out "p\.lock" of stage "a" is the pipeline's lock file/);
  assert.match(await refusal(stage('[params.yaml]', 'params: params.yaml\n'), { 'params.yaml': 'x: 1\n' }), /is the params file \(params\.yaml\)/);
  assert.match(await refusal(stage('[store]', 'cache: {dir: store/cache}\n')), /out "store" of stage "a" contains the cache folder \(store\/cache\)/);
  assert.match(await refusal(stage('[store/cache/x]', 'cache: {dir: store/cache}\n')), /is inside the cache folder/);
  // A pipeline in a sub-folder: an out naming that folder would delete it.
  const dir = makeWorkspace({ 'pipes/p.yaml': 'stages:\n  a:\n    cmd: x\n    outs: [pipes]\n' });
  await assert.rejects(loadPipeline(join(dir, 'pipes/p.yaml')), /out "pipes" of stage "a" contains the pipeline file \(pipes\/p\.yaml\)/);
  assert.match(await refusal(stage('[.]')), /is outside the workspace/);
  assert.match(await refusal(stage('[.runner/x]')), /inside the runner's or git's own folder/);
  // metrics are deleted like outs; deps on the pipeline file are fine.
  assert.match(await refusal('stages:\n  a:\n    cmd: x\n    metrics: [p.yaml]\n'), /metric "p\.yaml" of stage "a" is the pipeline file/);
  const ok = makeWorkspace({ 'p.yaml': 'stages:\n  a:\n    cmd: x\n    deps: [p.yaml]\n    outs: [o]\n' });
  assert.equal((await loadPipeline(join(ok, 'p.yaml'))).stages.length, 1);
});

test('the run does not delete the pipeline when an out names it (the reproduction)', () => {
  const dir = makeWorkspace({ 'p.yaml': "stages:\n  gen:\n    cmd: [sh, -c, 'echo x > o2']\n    outs: [o2, p.yaml]\n" });
  const result = runCli(dir, ['run', 'p.yaml']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /is the pipeline file/);
  assert.ok(existsSync(join(dir, 'p.yaml')));
});

test('YAML alias bombs, unresolved and self-referencing aliases are located errors', async () => {
  const lol = 'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n' +
    ['b', 'c', 'd', 'e', 'f', 'g', 'h'].map((k, i) => `${k}: &${k} [${Array(9).fill('*' + 'abcdefg'[i]).join(', ')}]\n`).join('');
  assert.match(await refusal(`params:\n  ${lol.trimEnd().replaceAll('\n', '\n  ')}\nstages: {}\n`), /^p\.yaml:\d+:\d+ error: invalid YAML: its aliases expand to too many values/);
  assert.match(await refusal('stages:\n  a:\n    cmd: x\n    desc: *nope\n'), /^p\.yaml:4:11 error: invalid YAML: alias \*nope has no anchor &nope before it/);
  assert.match(await refusal('params: &p {a: *p}\nstages: {}\n'), /alias \*p refers to the value it is inside/);
  assert.match(await refusal('params: {a: 1}\nstages: {}\nparams: {b: 2}\n'), /^p\.yaml:3:1 error: invalid YAML: key "params" appears twice in the same map/);
  assert.match(await refusal('stages:\n  ? [a, b]\n  : {cmd: x}\n'), /a key must be a plain value/);
  // The same in a params file, located in that file.
  assert.match(await refusal('params: params.yaml\nstages: {}\n', { 'params.yaml': 'lr: 1\nx: *nope\n' }), /params\.yaml:2:4 error: invalid YAML: alias \*nope/);
  assert.match(await refusal('params: params.yaml\nstages: {}\n', { 'params.yaml': lol }), /params\.yaml:\d+:\d+ error: invalid YAML: its aliases expand/);
});

test('a non-finite number used by a stage is a located error', async () => {
  for (const value of ['1e400', '-1e400', '.nan', '.inf', '[1, .nan]', '{deep: {x: -.inf}}']) {
    const text = await refusal(`params: {p: {x: ${value}}}\nstages:\n  a:\n    cmd: x\n    params: [p]\n`);
    assert.match(text, /^p\.yaml:5:14 error: param "p\.x(\[1\]|\.deep\.x)?" used by stage "a" is (-?Infinity|NaN), not a finite number/, value);
  }
  // From --set too, and unused ones stay harmless.
  assert.match(await refusal('params: {p: 1}\nstages:\n  a:\n    cmd: x\n    params: [p]\n', {}, { sets: ['p=1e999'] }), /param "p" used by stage "a" is Infinity/);
  const dir = makeWorkspace({ 'p.yaml': 'params: {p: 1e400, q: 1}\nstages:\n  a:\n    cmd: x\n    params: [q]\n' });
  assert.equal((await loadPipeline(join(dir, 'p.yaml'))).stages[0]!.params['q'], 1);
});

test('status and run print located errors, never a stack trace, for the issue reproductions', () => {
  const cases: Record<string, string> = {
    'unresolved alias': 'stages:\n  a:\n    cmd: x\n    desc: *nope\n',
    'infinite param': 'params: {x: 1e400}\nstages:\n  a:\n    cmd: x\n    params: [x]\n',
    'nan param': 'params: {x: .nan}\nstages:\n  a:\n    cmd: x\n    params: [x]\n',
    'bad stage name': 'stages:\n  a/b:\n    cmd: x\n',
    'unterminated reference': 'params: {prep: {size: 1}}\nstages:\n  a:\n    cmd: echo ${prep.size\n',
    'absurd timeout': 'stages:\n  a:\n    cmd: x\n    timeout: 99999999999999999999h\n',
  };
  for (const [name, text] of Object.entries(cases)) {
    const dir = makeWorkspace({ 'p.yaml': text });
    for (const args of [['status', 'p.yaml'], ['run', '--dry-run', 'p.yaml']]) {
      const result = runCli(dir, args);
      assert.equal(result.status, 2, `${name}: ${result.stderr}`);
      assert.match(result.stderr, /^p\.yaml:\d+:\d+ error: /, name);
      assert.doesNotMatch(result.stderr, STACK, name);
      assert.doesNotMatch(result.stderr, /undefined/, name);
    }
  }
});

test('a bad stage name is printed by its name, once', async () => {
  const text = await refusal('stages:\n  a/b:\n    cmd: x\n');
  assert.equal(text.split('\n')[0], 'p.yaml:2:3 error: invalid stage name "a/b": use letters, digits, "_", "-" and "." ("@" is reserved for foreach/matrix)');
  assert.doesNotMatch(text, /"undefined"/);
});

test('an unterminated ${ is a located error; $${ still escapes', async () => {
  assert.match(await refusal('params: {prep: {size: 1}}\nstages:\n  a:\n    cmd: echo ${prep.size\n'), /^p\.yaml:4:15 error: \$\{prep\.size has no closing "\}"/);
  assert.match(await refusal('stages:\n  a:\n    cmd: [echo, "a${"]\n'), /has no closing/);
  assert.match(await refusal('stages:\n  a:\n    cmd: x\n    outs: ["o${"]\n'), /has no closing/);
  assert.equal(interpolateText('cost $${x}', scopeLookup({})), 'cost ${x}');
});

test('durations and sizes: huge values are refused, stating the maximum', async () => {
  assert.equal(parseDuration('600h'), 600 * 3_600_000);
  for (const value of ['99999999999999999999h', '3651d', '1e400', 1e400, Infinity, NaN, -1]) assert.equal(parseDuration(value), undefined, String(value));
  assert.equal(parseSize(2 ** 51), undefined);
  assert.equal(parseSize('99999999999999999999GB'), undefined);
  assert.equal(parseSize(Infinity), undefined);
  assert.equal(parseSize('4GB'), 4e9);
  assert.match(await refusal('stages:\n  a:\n    cmd: x\n    timeout: 99999999999999999999h\n'), /^p\.yaml:4:14 error: stage "a": timeout "99999999999999999999h" is longer than the maximum, 3650d/);
  assert.match(await refusal('stages:\n  a:\n    cmd: x\n    timeout: 1e400\n'), /^p\.yaml:4:14 error: stage "a" key "timeout" must be a string or number/);
  assert.match(await refusal('stages:\n  a:\n    cmd: x\n    timeout: soon\n'), /is not a duration like 90s/);
  assert.match(await refusal('stages:\n  a:\n    cmd: x\n    resources: {memory: 9999999TB}\n'), /memory "9999999TB" is larger than the maximum, 1PiB/);
  assert.match(await refusal('slurm: {poll: 30d}\nstages:\n  a:\n    cmd: x\n'), /^p\.yaml:1:15 error: slurm poll "30d" is longer than the maximum, 24d/);
  assert.match(await refusal('slurm: {time: 99999999999d}\nstages:\n  a:\n    cmd: x\n'), /slurm time "99999999999d" is longer than the maximum/);
});

test('reading a long unreadable duration or size takes no time (no regular expression that backtracks)', { timeout: 10_000 }, async () => {
  // A nested-quantifier pattern took seconds at 26 digits and doubles with each one: 60 would never end.
  const digits = '1'.repeat(60);
  for (const text of [`${digits}x`, `${digits}h${digits}x`, `${digits} ${digits}`]) {
    assert.equal(parseDuration(text), undefined);
    assert.equal(parseSize(text), undefined);
  }
  assert.match(await refusal(`stages:\n  a:\n    cmd: x\n    timeout: ${digits}x\n`), /is not a duration like 90s/);
  assert.match(await refusal(`stages:\n  a:\n    cmd: x\n    timeout: ${digits}h\n`), /is longer than the maximum, 3650d/);
});

test('longTimeout waits out delays past the 32-bit timer limit instead of firing at once', async () => {
  let fired = false;
  const timer = longTimeout(() => (fired = true), 600 * 3_600_000);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(fired, false);
  timer.clear();
  await new Promise<void>((resolve) => longTimeout(resolve, 5));
});

test('timeout: 600h lets the stage finish (both ways of spawning)', () => {
  for (const spawner of ['', 'node']) {
    const dir = makeWorkspace({ 'p.yaml': "stages:\n  a:\n    cmd: [sh, -c, 'sleep 0.2; echo done > o.txt']\n    outs: [o.txt]\n    timeout: 600h\n" });
    const result = runCli(dir, ['run', 'p.yaml'], spawner ? { RUNNER_SPAWN: spawner } : {});
    assert.equal(result.status, 0, `${spawner}: ${result.stdout}${result.stderr}`);
    assert.equal(readFileSync(join(dir, 'o.txt'), 'utf8'), 'done\n');
  }
});

test('a short timeout still stops the stage (both ways of spawning)', () => {
  for (const spawner of ['', 'node']) {
    const dir = makeWorkspace({ 'p.yaml': "stages:\n  a:\n    cmd: [sleep, '30']\n    timeout: 200ms\n" });
    const result = runCli(dir, ['run', 'p.yaml'], spawner ? { RUNNER_SPAWN: spawner } : {});
    assert.equal(result.status, 1);
    assert.match(result.stdout + result.stderr, /timed out after 200 ms/, spawner);
  }
});

test('shell: true quotes interpolated values: --set p.v=$(touch pwned) creates nothing', () => {
  const dir = makeWorkspace({
    'p.yaml': "params: {p: {v: hi}}\nstages:\n  a:\n    cmd: 'echo ${p.v} > o.txt'\n    shell: true\n    outs: [o.txt]\n",
  });
  mkdirSync(join(dir, 'victim'));
  for (const value of ['$(touch pwned)', '`touch pwned`', 'x; rm -rf victim', "it's; touch pwned", 'a\nrm -rf victim', '*', '~', '"$HOME"', "''"]) {
    const result = runCli(dir, ['run', 'p.yaml', '--set', `p.v=${JSON.stringify(value)}`]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(readFileSync(join(dir, 'o.txt'), 'utf8'), value + '\n', value);
    assert.ok(!existsSync(join(dir, 'pwned')), value);
    assert.ok(existsSync(join(dir, 'victim')), value);
  }
});

test('shell quoting: every value is one word; lists and maps as JSON; ${raw:…} pastes as it is', () => {
  const sh = (script: string) => spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' }).stdout;
  const params = { s: "a 'b' \"c\" $d `e` \\f", n: 1e-5, l: [1, 'two words'], m: { k: "it's" }, e: '', cmd: 'echo raw | tr a-z A-Z' };
  const lookup = scopeLookup(params);
  for (const name of ['s', 'n', 'l', 'm', 'e']) {
    const script = interpolateText(`printf '%s|' \${${name}}`, lookup, 'shell');
    const expected = typeof params[name as 'n'] === 'object' ? JSON.stringify(params[name as 'l']) : String(params[name as 'n']);
    assert.equal(sh(script), `${expected}|`, script);
  }
  assert.equal(interpolateText('${n} ${s}', lookup, 'shell').split(' ')[0], String(1e-5), 'a plain number needs no quotes');
  assert.equal(sh(interpolateText('${raw:cmd}', lookup, 'shell')), 'RAW\n');
  assert.equal(interpolateText('${raw:n}', lookup), String(1e-5), 'outside a shell cmd the raw form is the plain one');
  // Fuzz the quoting with every byte the shell may treat specially.
  const specials = ` \t\n'"\\$\`!*?[]{}()<>|&;#~=%^,.:/@+-`;
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const values = Array.from({ length: 60 }, () => Array.from({ length: 1 + Math.floor(random() * 12) }, () => specials[Math.floor(random() * specials.length)]).join(''));
  const out = sh(values.map((v) => `printf '%s\\0' ${shellQuote(v)}`).join('; '));
  assert.deepEqual(out.split('\0').slice(0, -1), values);
});

test('--set: invalid YAML and anchors are errors; quoting passes the text', () => {
  const params = { prep: { size: [1, 2] }, x: 'a' };
  assert.throws(() => applySets(params, ['prep.size=[1,']), /--set prep\.size=\[1,: the value is not valid YAML .*quote it: --set 'prep\.size="\[1,"'/);
  assert.throws(() => applySets(params, ['x=&a']), /--set x=&a: YAML anchors and aliases/);
  assert.throws(() => applySets(params, ['x=*a']), /anchors and aliases/);
  assert.throws(() => applySets(params, ['x={a: 1']), /not valid YAML/);
  assert.deepEqual(applySets(params, ['x="&a"'])['x'], '&a');
  assert.deepEqual(applySets(params, ['prep.size="[1,"'])['prep'], { size: '[1,' });
  assert.deepEqual(applySets(params, ['prep.size=[3, 4]'])['prep'], { size: [3, 4] });
  assert.equal(applySets(params, ['x='])['x'], '');
  const dir = makeWorkspace({ 'p.yaml': 'params: {prep: {size: 1}}\nstages:\n  a:\n    cmd: x\n' });
  const result = runCli(dir, ['params', 'p.yaml', '--set', 'prep.size=[1,']);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /^error: --set prep\.size=\[1,: the value is not valid YAML/);
});

test('a NUL byte in an interpolated value is a located error, not a spawn crash', async () => {
  assert.match(await refusal('params: {v: "a\\0b"}\nstages:\n  a:\n    cmd: [echo, "${v}"]\n'), /^p\.yaml:4:17 error: a NUL character/);
});

test('an unwritable lock file is one clear line naming the file; no stack trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runner-lock-'));
  mkdirSync(join(dir, 'p.lock'));
  const writer = new LockWriter(join(dir, 'p.lock'), {});
  assert.throws(() => writer.flush(), (error: unknown) => {
    assert.ok(error instanceof DiagnosticError);
    assert.match(error.message, /^cannot write the lock file .*\/p\.lock: .*a folder is where a file was expected \(EISDIR\)\. The stages that finished are in the run-cache/);
    return true;
  });
  const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write', path: 'p.lock.123' });
  assert.equal(describeUnexpected(full), 'write p.lock.123: the disk is full; free some space and run again (ENOSPC)');
  assert.match(describeUnexpected(new TypeError('x is not a function')), /^unexpected error: TypeError: x is not a function; this is a bug, .*RUNNER_DEBUG=1/);
  assert.equal(describeFailure({ reason: 'disk-full', path: '.runner/logs/a.log' }), 'the disk is full: cannot write .runner/logs/a.log; free some space and run again');
});

/** A tmpfs of `size` mounted at a fresh folder, or undefined where this user can't mount one. */
function smallDisk(size: string): { dir: string; unmount(): void } | undefined {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'runner-full-'));
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]).status !== 0) return undefined;
  return { dir, unmount: () => void (spawnSync('umount', [dir]), rmSync(dir, { recursive: true, force: true })) };
}

function canMount(): boolean {
  const probe = smallDisk('64k');
  probe?.unmount();
  return probe !== undefined;
}

test('a full disk: a stage filling it with its log, and the lock file, are reported as such', { skip: !canMount() && 'needs root to mount a small tmpfs' }, () => {
  for (const spawner of ['', 'node']) {
    const disk = smallDisk('512k')!;
    const cache = mkdtempSync(join(tmpdir(), 'runner-full-cache-'));
    const env: Record<string, string> = { RUNNER_CACHE_DIR: cache, ...(spawner ? { RUNNER_SPAWN: spawner } : {}) };
    try {
      mkdirSync(join(disk.dir, '.runner'));
      // The stage prints more than the disk holds: the runner's log write fails. (Only through the spawn
      // helper: with execa the stage writes its log itself, and meets the error itself.)
      if (spawner === '') {
        writeFileSync(join(disk.dir, 'p.yaml'), "stages:\n  loud:\n    cmd: [sh, -c, 'head -c 2000000 /dev/zero | tr \"\\\\0\" x']\n");
        const result = runCli(disk.dir, ['run', 'p.yaml'], env);
        // The stage ran (its exit code decides), its lost output is named with the cause, and the full disk
        // then stops the run at the lock file with its own line.
        assert.notEqual(result.status, 0);
        assert.match(result.stderr, /loud: its output was lost: cannot write the log \S*\.runner\/logs\/loud\.log: No space left on device/);
        assert.match(result.stderr, /the disk is full; free some space and run again \(ENOSPC\)/);
        assert.doesNotMatch(result.stdout + result.stderr, /could not start/);
        rmSync(join(disk.dir, '.runner'), { recursive: true, force: true });
        mkdirSync(join(disk.dir, '.runner'));
      }
      // The stage fills the disk with a file that is no out: the lock file can't be written after it.
      writeFileSync(join(disk.dir, 'p.yaml'), "stages:\n  fill:\n    cmd: [sh, -c, 'echo x > o.txt; head -c 2000000 /dev/zero > filler; true']\n    outs: [o.txt]\n");
      const result = runCli(disk.dir, ['run', 'p.yaml'], env);
      assert.equal(result.status, 2, result.stdout + result.stderr);
      assert.match(result.stderr, /error: cannot write the lock file p\.lock: .*the disk is full; free some space and run again \(ENOSPC\)/);
      assert.doesNotMatch(result.stderr, STACK);
    } finally {
      disk.unmount();
      rmSync(cache, { recursive: true, force: true });
    }
  }
});
