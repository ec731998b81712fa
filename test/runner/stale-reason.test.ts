// The one printer of stale reasons: every kind has its own line, and the lines name what they are about.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeReason, type StaleReason } from '../../runner/stale-reason.js';

const EVERY_KIND: { [K in StaleReason['kind']]: Extract<StaleReason, { kind: K }> } = {
  forced: { kind: 'forced' },
  'upstream-stale': { kind: 'upstream-stale', stage: 'prep' },
  'never-run': { kind: 'never-run' },
  'dep-missing': { kind: 'dep-missing', path: 'data/raw' },
  'command-changed': { kind: 'command-changed', before: ['a'], after: ['b'] },
  'param-changed': { kind: 'param-changed', name: 'train.lr', before: 0.0001, after: undefined },
  'dep-added': { kind: 'dep-added', path: 'x' },
  'dep-removed': { kind: 'dep-removed', path: 'x' },
  'dep-changed': { kind: 'dep-changed', path: 'data/raw', isDir: true, nfiles: 12, wasNfiles: 11 },
  'code-changed': { kind: 'code-changed', path: 'lib/b.ts', importedBy: ['lib/a.ts', 'main.ts'] },
  'code-added': { kind: 'code-added', path: 'lib/c.ts', importedBy: ['main.ts'] },
  'code-removed': { kind: 'code-removed', path: 'lib/d.ts' },
  'code-not-recorded': { kind: 'code-not-recorded', files: 3, packages: 1 },
  'package-changed': { kind: 'package-changed', name: '@tensorflow/tfjs', before: '4.22.0', after: '4.23.0' },
  'builtins-changed': { kind: 'builtins-changed', added: ['fs'], removed: ['os'] },
  'node-changed': { kind: 'node-changed', before: '20', after: '22' },
  'import-unresolved': { kind: 'import-unresolved', import: 'a.ts -> ./b.js' },
  'import-resolved': { kind: 'import-resolved', import: 'a.ts -> ./b.js' },
  'output-missing': { kind: 'output-missing', path: 'out/x' },
  'output-not-recorded': { kind: 'output-not-recorded', path: 'out/x' },
  'output-modified': { kind: 'output-modified', path: 'out/x' },
  'definition-changed': { kind: 'definition-changed' },
};

test('every kind of reason prints its own line', () => {
  const lines = Object.values(EVERY_KIND).map((reason) => describeReason(reason));
  assert.equal(new Set(lines).size, lines.length, lines.join('\n'));
  assert.equal(describeReason(EVERY_KIND['code-changed']), 'code changed: lib/b.ts (imported by lib/a.ts ← main.ts)');
  assert.equal(describeReason(EVERY_KIND['package-changed']), 'package changed: @tensorflow/tfjs 4.22.0 -> 4.23.0');
  assert.equal(describeReason({ kind: 'package-changed', name: 'sharp', before: undefined, after: '0.35.5' }), 'package added: sharp 0.35.5');
  assert.equal(describeReason(EVERY_KIND['param-changed']), 'param train.lr: 0.0001 -> unset');
  assert.equal(describeReason(EVERY_KIND['dep-changed']), 'dep changed: data/raw (12 files, was 11)');
  assert.equal(describeReason(EVERY_KIND['node-changed']), 'node changed: 20 -> 22');
});
