import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { RunCache } from '../../cache/run-cache.js';
import { journalLine } from '../../cache/run-journal.js';
import type { ContentHash, RunRecord, StageKey } from '../../cache/types.js';

const key = 'ab'.repeat(32) as StageKey;
const record: RunRecord = {
  key,
  cmd: ['touch', 'out/x'],
  deps: [{ path: 'in', hash: 'c'.repeat(64) as ContentHash, size: 3, isDir: false }],
  params: { a: 1 },
  outs: [{ path: 'out/x', hash: 'd'.repeat(64) as ContentHash, size: 0, isDir: false }],
  durationMs: 12,
  createdAt: '2024-01-01T00:00:00.000Z',
};

test('a stored record is returned by its key, and an unknown key is a miss', () => {
  const runs = new RunCache(mkdtempSync(join(tmpdir(), 'cache-runs-')));
  runs.put(record);
  assert.deepEqual(runs.get(key), record);
  assert.equal(runs.get('00'.repeat(32) as StageKey), undefined);
  assert.deepEqual([...runs.all()], [record]);
});

for (const [what, text] of [
  ['truncated JSON', '{"key": "ab'],
  ['a record for another key', JSON.stringify({ ...record, key: 'cd'.repeat(32) })],
  ['a record with a malformed out', JSON.stringify({ ...record, outs: [{ path: 'x' }] })],
] as const) {
  test(`a corrupt entry (${what}) is warned about, removed and treated as a miss`, () => {
    const warnings: string[] = [];
    const runs = new RunCache(mkdtempSync(join(tmpdir(), 'cache-runs-')), { warn: (m) => warnings.push(m) });
    runs.putFile(record);
    writeFileSync(runs.entryPath(key), text);
    assert.equal(runs.get(key), undefined);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, new RegExp(`${key}\\.json is corrupt`));
    assert.equal(existsSync(runs.entryPath(key)), false);
  });
}

test('a malformed record is refused at put', () => {
  const runs = new RunCache(mkdtempSync(join(tmpdir(), 'cache-runs-')));
  assert.throws(() => runs.put({ ...record, deps: [{ path: 'x' }] } as unknown as RunRecord), /malformed run record/);
});

const otherKey = 'cd'.repeat(32) as StageKey;

test('records put by one run are read by the next from its journal, and compaction moves them to one file each', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cache-runs-'));
  const first = new RunCache(dir);
  first.put(record);
  first.put({ ...record, key: otherKey });
  assert.equal(existsSync(first.entryPath(key)), false, 'a put creates no file per record');
  assert.equal(readdirSync(join(dir, 'runs', 'journal')).length, 1);
  assert.deepEqual(new RunCache(dir).get(key), record);
  first.close();
  const next = new RunCache(dir);
  assert.equal(next.compact(), 2);
  assert.deepEqual(readdirSync(join(dir, 'runs', 'journal')), []);
  assert.deepEqual(JSON.parse(readFileSync(next.entryPath(key), 'utf8')), record);
  assert.deepEqual(new RunCache(dir).get(otherKey), { ...record, key: otherKey });
});

test('compaction leaves the journal of a run still appending to it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cache-runs-'));
  const running = new RunCache(dir);
  running.put(record);
  assert.equal(new RunCache(dir).compact(), 0);
  assert.equal(readdirSync(join(dir, 'runs', 'journal')).length, 1);
  assert.deepEqual(new RunCache(dir).get(key), record);
  running.close();
});

test('a record in the layout of earlier versions (one file per record) is still read, next to journaled ones', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cache-runs-'));
  const old = new RunCache(dir);
  // What the per-record writer before the journal left: <runs>/<key[0:2]>/<key>.json, indented JSON.
  mkdirSync(dirname(old.entryPath(key)), { recursive: true });
  writeFileSync(old.entryPath(key), JSON.stringify(record, null, 1) + '\n');
  const runs = new RunCache(dir);
  runs.put({ ...record, key: otherKey });
  assert.deepEqual(runs.get(key), record);
  assert.deepEqual([...new RunCache(dir).all()].map((r) => r.key), [key, otherKey]);
  runs.close();
});

test('a journal line cut short by a kill is ignored, and a damaged one is warned about and skipped', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cache-runs-'));
  const runs = new RunCache(dir);
  runs.put(record);
  runs.close();
  const journal = join(dir, 'runs', 'journal', readdirSync(join(dir, 'runs', 'journal'))[0]!);
  const intact = journalLine({ ...record, key: otherKey });
  const damaged = journalLine({ ...record, key: 'ef'.repeat(32) as StageKey }).replace('"durationMs":12', '"durationMs":13');
  appendFileSync(journal, damaged + intact + intact.slice(0, 40));
  const warnings: string[] = [];
  const next = new RunCache(dir, { warn: (m) => warnings.push(m) });
  assert.deepEqual(next.get(key), record);
  assert.deepEqual(next.get(otherKey), { ...record, key: otherKey });
  assert.equal(next.get('ef'.repeat(32) as StageKey), undefined);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /journal .*\.jsonl line 2 is corrupt \(checksum mismatch\)/);
});
