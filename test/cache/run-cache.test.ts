import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunCache } from '../../cache/run-cache.js';
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
    runs.put(record);
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
