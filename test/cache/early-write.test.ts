// A store file written before it may be named (cache/early-write.ts): nothing appears under its name until
// name(), the bytes are whole when it does, and a discarded one leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EarlyWrite } from '../../cache/early-write.js';

function folder(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'early-write-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('an early write appears under its name only when named, whole and read-only', async (t) => {
  const dir = folder(t);
  const bytes = Buffer.from('x'.repeat(100_000));
  const write = new EarlyWrite(join(dir, 'tmp-1'), bytes);
  assert.deepEqual(readdirSync(dir), ['tmp-1']);
  await write.name(join(dir, 'final'));
  assert.deepEqual(readdirSync(dir), ['final']);
  assert.ok(readFileSync(join(dir, 'final')).equals(bytes));
  assert.equal(statSync(join(dir, 'final')).mode & 0o777, 0o444);
  write.discard(); // named: nothing to remove
  assert.ok(existsSync(join(dir, 'final')));
});

test('a discarded early write leaves nothing; one whose temp exists already is refused', async (t) => {
  const dir = folder(t);
  const write = new EarlyWrite(join(dir, 'tmp-2'), Buffer.from('abc'));
  write.discard();
  assert.deepEqual(readdirSync(dir), []);
  writeFileSync(join(dir, 'taken'), 'other');
  assert.throws(() => new EarlyWrite(join(dir, 'taken'), Buffer.from('abc')), { code: 'EEXIST' });
  assert.equal(readFileSync(join(dir, 'taken'), 'utf8'), 'other');
});

test('naming into a folder that is not there fails and removes the temp', async (t) => {
  const dir = folder(t);
  const write = new EarlyWrite(join(dir, 'tmp-3'), Buffer.from('abc'));
  await assert.rejects(write.name(join(dir, 'missing', 'final')), { code: 'ENOENT' });
  assert.deepEqual(readdirSync(dir), []);
});
