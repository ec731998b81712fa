// runner/speedups/spawn-helper.py on its own, through its JSON-lines protocol (the local executor's tests
// cover it behind SpawnServer): ready, a start, a not-found program, a kill through the pidfd, the log created
// at the first byte, and a log that cannot be written told beside the exit, never instead of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const helperFile = fileURLToPath(new URL('../../../runner/speedups/spawn-helper.py', import.meta.url));
const usable = spawnSync('python3', ['-c', 'import os; os.pidfd_open(os.getpid())']).status === 0;
const skip = usable ? false : 'python3 with os.pidfd_open (3.9+, Linux 5.3+) not found';

/** Starts the helper in `cwd`; `send` writes a request, `next` waits for the next reply line. */
function helper(cwd: string) {
  const child = spawn('python3', ['-I', '-S', helperFile], { cwd, stdio: ['pipe', 'pipe', 'inherit'] });
  const replies: unknown[] = [];
  const waiting: ((reply: unknown) => void)[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const reply = JSON.parse(line) as unknown;
    const resolve = waiting.shift();
    if (resolve) resolve(reply);
    else replies.push(reply);
  });
  return {
    send: (request: object) => child.stdin.write(JSON.stringify(request) + '\n'),
    next: () => new Promise<unknown>((resolve) => (replies.length > 0 ? resolve(replies.shift()) : waiting.push(resolve))),
    close: () => new Promise<number | null>((resolve) => {
      child.on('exit', (code) => resolve(code));
      child.stdin.end();
    }),
  };
}

const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };

test('the helper says it is ready, starts a program with the given argv in its cwd, and tells its exit code', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spawn-helper-'));
  const h = helper(dir);
  assert.deepEqual(await h.next(), { ready: true });
  h.send({ op: 'spawn', id: 1, argv: ['sh', '-c', 'printf "%s" "$1" > out; exit 4', 'sh', 'a b;c'], env, log: join(dir, 'log'), header: '$ sh\n' });
  assert.deepEqual(await h.next(), { id: 1, exit: 4 });
  assert.equal(readFileSync(join(dir, 'out'), 'utf8'), 'a b;c', 'an argument is never split or interpreted by a shell');
  assert.equal(existsSync(join(dir, 'log')), false, 'no output, no log');
  h.send({ op: 'spawn', id: 2, argv: ['sh', '-c', 'echo hi'], env, log: join(dir, 'log'), header: '$ sh\n' });
  assert.deepEqual(await h.next(), { id: 2, exit: 0 });
  assert.equal(readFileSync(join(dir, 'log'), 'utf8'), '$ sh\nhi\n', 'the header, then the output, all in before the exit is told');
  assert.equal(await h.close(), 0, 'EOF on its input ends it once nothing runs');
});

test('a program that is not there is told as not started, with errno', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spawn-helper-'));
  const h = helper(dir);
  await h.next();
  h.send({ op: 'spawn', id: 7, argv: ['no-such-program-here'], env, log: join(dir, 'log'), header: '' });
  assert.deepEqual(await h.next(), { id: 7, error: 'program not found: no-such-program-here', errno: 2 });
  await h.close();
});

test('a kill reaches the running process, whose exit is the negative signal number', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spawn-helper-'));
  const h = helper(dir);
  await h.next();
  h.send({ op: 'spawn', id: 3, argv: ['sleep', '30'], env, log: join(dir, 'log'), header: '' });
  h.send({ op: 'kill', id: 3, signal: 15 });
  assert.deepEqual(await h.next(), { id: 3, exit: -15 });
  await h.close();
});

test('a log that cannot be written: the stage still ran, its exit is told as it was, with logError beside it', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'spawn-helper-'));
  const h = helper(dir);
  await h.next();
  const log = join(dir, 'gone', 'log');
  h.send({ op: 'spawn', id: 5, argv: ['sh', '-c', 'echo hi; touch ran; exit 2'], env, log, header: '' });
  const reply = (await h.next()) as { id: number; exit: number; logError?: string };
  assert.equal(reply.exit, 2);
  assert.equal(existsSync(join(dir, 'ran')), true);
  assert.match(reply.logError ?? '', new RegExp(`^cannot write the log ${log}: No such file or directory$`));
  await h.close();
});
