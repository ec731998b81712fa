// `runner check-deps`: a stage run once under strace; files it read that no dep covers and files it wrote that
// are not outs are listed. A shell stage and a Python stage, each reading a file it doesn't declare.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseTrace } from '../../runner/code-deps/file-trace.js';
import { makeWorkspace, runCli } from './helpers.js';

const haveStrace = spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
const havePython = spawnSync('python3', ['--version'], { stdio: 'ignore' }).status === 0;

const PIPELINE = `stages:
  shell:
    cmd: cat declared.txt secret.txt > out/shell.txt && echo x > stray.txt
    shell: true
    deps: [declared.txt]
    outs: [out/shell.txt]
  python:
    cmd: [python3, prog.py]
    deps: [prog.py, declared.txt]
    outs: [out/py.txt]
  clean:
    cmd: [python3, clean.py]
    deps: [clean.py, declared.txt]
    outs: [out/clean.txt]
`;

function workspace(): string {
  return makeWorkspace({
    'pipeline.yaml': PIPELINE,
    'declared.txt': 'declared\n',
    'secret.txt': 'not declared\n',
    'data/config.json': '{}\n',
    'prog.py': "import json\nopen('declared.txt').read()\njson.load(open('data/config.json'))\nopen('out/py.txt', 'w').write('ok')\n",
    // Written to a temp file and renamed into its out: the temp file is no undeclared write.
    'clean.py': "import os\nopen('declared.txt').read()\nopen('clean.tmp', 'w').write('ok')\nos.replace('clean.tmp', 'out/clean.txt')\n",
    'out/.keep': '',
  });
}

test('parseTrace: reads, writes, renames and execs inside the workspace only', () => {
  const trace = [
    '101 openat(AT_FDCWD, "in/a.txt", O_RDONLY|O_CLOEXEC) = 3',
    '101 openat(AT_FDCWD, "/usr/lib/libc.so.6", O_RDONLY|O_CLOEXEC) = 3',
    '102 openat(AT_FDCWD, "/ws/out/b.txt", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 4',
    '102 openat(AT_FDCWD, "/ws/dir", O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY) = 5',
    '102 rename("out/b.tmp", "out/c.txt") = 0',
    '103 execve("/ws/run.sh", ["/ws/run.sh"], 0x7ffd /* 20 vars */) = 0',
    '103 openat(AT_FDCWD, "with \\"quote\\".txt", O_RDONLY) = 3',
  ].join('\n');
  const { reads, writes } = parseTrace(trace, '/ws');
  assert.deepEqual([...reads].sort(), ['in/a.txt', 'run.sh', 'with "quote".txt']);
  assert.deepEqual([...writes].sort(), ['out/b.txt', 'out/c.txt']);
});

test('a shell stage and a Python stage that read an undeclared file are reported, with an undeclared write', { skip: !haveStrace ? 'strace is not installed (apt-get install strace)' : !havePython ? 'python3 is not installed' : false }, () => {
  const dir = workspace();
  const result = runCli(dir, ['check-deps', 'pipeline.yaml', '--json']);
  assert.equal(result.status, 1, result.stderr);
  const report = JSON.parse(result.stdout) as { stages: { stage: string; exitCode: number; undeclaredReads: string[]; undeclaredWrites: string[] }[] };
  const byStage = Object.fromEntries(report.stages.map((s) => [s.stage, s]));
  assert.deepEqual(byStage['shell'], { stage: 'shell', exitCode: 0, undeclaredReads: ['secret.txt'], undeclaredWrites: ['stray.txt'] });
  assert.deepEqual(byStage['python'], { stage: 'python', exitCode: 0, undeclaredReads: ['data/config.json'], undeclaredWrites: [] });
  assert.deepEqual(byStage['clean'], { stage: 'clean', exitCode: 0, undeclaredReads: [], undeclaredWrites: [] });
  const text = runCli(dir, ['check-deps', 'pipeline.yaml', 'python']);
  assert.match(text.stdout, /python: exit 0\n {4}read, but no dep covers it: data\/config\.json\n/);
  writeFileSync(join(dir, 'pipeline.yaml'), PIPELINE.replace('deps: [prog.py, declared.txt]', 'deps: [prog.py, declared.txt, data]'));
  const fixed = runCli(dir, ['check-deps', 'pipeline.yaml', 'python']);
  assert.equal(fixed.status, 0, fixed.stdout + fixed.stderr);
  assert.match(fixed.stdout, /python: exit 0, every file it read is a dep, every file it wrote an out/);
});

test('without strace, check-deps says so and what to install', () => {
  const dir = workspace();
  const result = runCli(dir, ['check-deps', 'pipeline.yaml'], { PATH: join(dir, 'out') }); // a PATH with no strace on it
  assert.equal(result.status, 2);
  assert.match(result.stderr, /strace, which is not installed here \(Debian: apt-get install strace\)/);
});
