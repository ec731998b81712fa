import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stageKey, canonicalJson, CONTRACT_VERSION } from '../../cache/fingerprint.js';
import type { ContentHash, FingerprintData } from '../../cache/types.js';

const h = (c: string): ContentHash => c.repeat(64) as ContentHash;

function base(): FingerprintData {
  return {
    contractVersion: CONTRACT_VERSION,
    platform: 'linux-x64',
    argv: ['dsb2018', 'split', '--seed', '1'],
    shell: false,
    params: { split: { seed: 1, fraction: 0.1 } },
    deps: [
      { path: 'data/b', hash: h('b'), size: 2, nfiles: 1, isDir: true },
      { path: 'data/a', hash: h('a'), size: 1, isDir: false },
    ],
    env: { B: '2', A: '1' },
    outs: ['out/y', 'out/x'],
  };
}

test('equal data in any key or list order gives the same key', () => {
  const reordered: FingerprintData = {
    outs: ['out/x', 'out/y'],
    env: { A: '1', B: '2' },
    deps: [...base().deps].reverse(),
    params: { split: { fraction: 0.1, seed: 1 } },
    shell: false,
    argv: ['dsb2018', 'split', '--seed', '1'],
    platform: 'linux-x64',
    contractVersion: CONTRACT_VERSION,
  };
  assert.equal(stageKey(reordered), stageKey(base()));
  assert.match(stageKey(base()), /^[0-9a-f]{64}$/);
});

test('the key changes when and only when a field changes', () => {
  const key = stageKey(base());
  const changes: [string, (d: FingerprintData) => void][] = [
    ['contractVersion', (d) => (d.contractVersion += 1)],
    ['platform', (d) => (d.platform = 'darwin-arm64')],
    ['argv', (d) => (d.argv = ['dsb2018', 'split', '--seed', '2'])],
    ['argv split differently', (d) => (d.argv = ['dsb2018', 'split', '--seed 1'])],
    ['shell', (d) => (d.shell = true)],
    ['a param value', (d) => (d.params = { split: { seed: 2, fraction: 0.1 } })],
    ['a param added', (d) => (d.params = { split: { seed: 1, fraction: 0.1, extra: null } })],
    ['a dep hash', (d) => (d.deps[0]!.hash = h('c'))],
    ['a dep path', (d) => (d.deps[0]!.path = 'data/c')],
    ['a dep added', (d) => d.deps.push({ path: 'data/z', hash: h('d'), size: 1, isDir: false })],
    ['an env value', (d) => (d.env['A'] = '3')],
    ['an env var added', (d) => (d.env['C'] = '')],
    ['an out', (d) => (d.outs = ['out/x'])],
  ];
  const seen = new Set([key]);
  for (const [what, change] of changes) {
    const data = base();
    change(data);
    const changed = stageKey(data);
    assert.notEqual(changed, key, `changing ${what} must change the key`);
    seen.add(changed);
  }
  assert.equal(seen.size, changes.length + 1, 'every change gives a distinct key');
  const sizeOnly = base();
  sizeOnly.deps[0]!.size = 999; // not content: same hash means same bytes
  assert.equal(stageKey(sizeOnly), key);
});

test('a param JSON cannot represent is refused, naming where it is', () => {
  const data = base();
  data.params = { train: { lr: Number.NaN } };
  assert.throws(() => stageKey(data), /params\.train\.lr is NaN/);
  assert.equal(canonicalJson({ b: [1, { d: 1, c: 2 }], a: 'x' }), '{"a":"x","b":[1,{"c":2,"d":1}]}');
});
