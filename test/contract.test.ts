import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stageEvents } from '../stages/contract.js';
import { writeAtomically } from '../stages/write-atomically.js';

test('events are appended to RUNNER_EVENTS as JSON lines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'contract-'));
  const file = join(dir, 'events.jsonl');
  const events = stageEvents({ RUNNER_EVENTS: file });
  events.progress(3, 25, 'epoch');
  events.metric({ loss: 0.5 });
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines, [{ progress: { done: 3, total: 25, unit: 'epoch' } }, { metric: { loss: 0.5 } }]);
});

test('a failed atomic write leaves neither the output nor its temp path behind', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'contract-'));
  const out = join(dir, 'out');
  await assert.rejects(
    writeAtomically(out, async (tmp) => {
      mkdirSync(tmp);
      writeFileSync(join(tmp, 'half'), 'x');
      throw new Error('boom');
    }),
  );
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(dir), []);
});

test('a successful atomic write replaces the old output whole', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'contract-'));
  const out = join(dir, 'out');
  mkdirSync(out);
  writeFileSync(join(out, 'old'), 'x');
  await writeAtomically(out, async (tmp) => {
    mkdirSync(tmp);
    writeFileSync(join(tmp, 'new'), 'y');
  });
  assert.deepEqual(readdirSync(out), ['new']);
});
