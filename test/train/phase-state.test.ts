// When a training phase continues its checkpoint: same run (flags and inputs) with any epoch count not below the
// checkpoint's epoch; version-1 checkpoints (epoch count in the key) are recognised; anything else starts over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { phaseRunKey, resumableState, type PhaseMeta } from '../../stages/train/phase-state.js';

function checkpointsWith(meta: Partial<PhaseMeta>): string {
  const dir = mkdtempSync(join(tmpdir(), 'phase-state-'));
  mkdirSync(join(dir, 'last'));
  writeFileSync(join(dir, 'last', 'model.json'), JSON.stringify({ format: 'runner-parameter-store', weightsManifest: [], meta }));
  return dir;
}

const history = [{ epoch: 1, train: {}, seconds: 1, steps: 1 }] as unknown as PhaseMeta['history'];
const inputs = mkdtempSync(join(tmpdir(), 'phase-inputs-'));
writeFileSync(join(inputs, 'manifest.json'), '{"samples": 3}');
const flags = { lr: '0.001', seed: '1', backend: 'wasm' };
const key = phaseRunKey(flags, [join(inputs, 'manifest.json')]);

test('a checkpoint of the same run continues with more or as many epochs, and starts over when it is past the end', () => {
  const dir = checkpointsWith({ runKey: key, keyVersion: 2, epoch: 4, history, bestEpoch: 3, bestValLoss: 1 });
  assert.equal(resumableState(dir, key, { epochs: 20 })?.epoch, 4);
  assert.equal(resumableState(dir, key, { epochs: 4 })?.epoch, 4);
  const notes: string[] = [];
  assert.equal(resumableState(dir, key, { epochs: 3, log: (m) => notes.push(m) }), undefined);
  assert.match(notes[0] ?? '', /at epoch 4, past the 3 epochs asked for: starting over/);
});

test('a checkpoint of other flags or other inputs is not continued', () => {
  const dir = checkpointsWith({ runKey: key, keyVersion: 2, epoch: 2, history, bestEpoch: 2, bestValLoss: 1 });
  const otherFlags = phaseRunKey({ ...flags, lr: '0.0001' }, [join(inputs, 'manifest.json')]);
  const notes: string[] = [];
  assert.equal(resumableState(dir, otherFlags, { epochs: 5, log: (m) => notes.push(m) }), undefined);
  assert.match(notes[0] ?? '', /of another run/);
  writeFileSync(join(inputs, 'other.json'), '{"samples": 4}');
  assert.equal(resumableState(dir, phaseRunKey(flags, [join(inputs, 'other.json')]), { epochs: 5 }), undefined);
});

test('a version-1 checkpoint (epoch count in its key) is continued under the new key with any later end', () => {
  const legacyKey = (epochs: string) => phaseRunKey({ ...flags, epochs }, [join(inputs, 'manifest.json')]);
  const dir = checkpointsWith({ runKey: legacyKey('20'), epoch: 10, history, bestEpoch: 9, bestValLoss: 1 });
  const resumed = resumableState(dir, key, { epochs: 12, legacyKey });
  assert.equal(resumed?.epoch, 10);
  assert.equal(resumed?.runKey, key, 'saved again under the version-2 key');
  assert.equal(resumed?.keyVersion, 2);
  // Without the legacy key function, or for another run, it is not recognised.
  assert.equal(resumableState(dir, key, { epochs: 12 }), undefined);
  const otherRun = (epochs: string) => phaseRunKey({ ...flags, seed: '2', epochs }, [join(inputs, 'manifest.json')]);
  assert.equal(resumableState(dir, key, { epochs: 12, legacyKey: otherRun }), undefined);
});
