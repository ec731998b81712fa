// Manifests are untrusted input: parseManifest/validateManifest refuse every path that could leave the folder
// it is restored into, and anything not of the manifest's shape; the manifests the store writes pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirManifest, manifestText, sha256 } from '../../cache/hash.js';
import { ManifestError, parseManifest, validateManifest } from '../../cache/manifest.js';
import type { ContentHash, ManifestEntry } from '../../cache/types.js';
import seedrandom from 'seedrandom';

const H = sha256('x');

function row(path: string, extra: unknown[] = []): unknown[] {
  return [path, H, 1, ...extra];
}

test('a manifest the store writes parses back to the same entries, and its hash is checked', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'manifest-'));
  mkdirSync(join(dir, 'd/sub/deeper'), { recursive: true });
  writeFileSync(join(dir, 'd/a'), 'A');
  writeFileSync(join(dir, 'd/a.b'), 'AB');
  writeFileSync(join(dir, 'd/sub/deeper/c'), 'C');
  writeFileSync(join(dir, 'd/ünï cøde'), 'U');
  symlinkSync('../elsewhere', join(dir, 'd/sub/link'));
  const entries = await dirManifest(dir, 'd');
  const text = manifestText(entries);
  assert.deepEqual(parseManifest(text, sha256(text)), entries);
  assert.throws(() => parseManifest(text, sha256(text + ' ')), /does not hash to its name/);
});

const REFUSED: [string, unknown, RegExp][] = [
  ['not JSON', 'nope', /not JSON/],
  ['not an array', '{"a": 1}', /not a JSON array/],
  ['a row that is not an array', [['a', H, 1], 'b'], /row 1 is not/],
  ['a row with a number path', [[1, H, 1]], /row 0 is not/],
  ['a row with a fifth field', [row('a', ['symlink', 'x'])], /row 0 is not/],
  ['a row with an unknown fourth field', [row('a', ['hardlink'])], /row 0 is not/],
  ['a ".." segment', [row('a/../../b')], /row 0 .* "\.\." segment/],
  ['a leading ".."', [row('../b')], /"\.\." segment/],
  ['a lone ".."', [row('..')], /"\.\." segment/],
  ['a "." segment', [row('a/./b')], /"\." segment/],
  ['an absolute path', [row('/etc/passwd')], /absolute path/],
  ['an empty path', [row('')], /empty path/],
  ['an empty segment', [row('a//b')], /empty segment/],
  ['a trailing slash', [row('a/')], /empty segment/],
  ['a backslash', [row('a\\..\\b')], /backslash/],
  ['a NUL', [row('a\0b')], /NUL/],
  ['a hash that is not hex', [['a', '../../../../etc/passwd', 1]], /not sha256 hex/],
  ['an uppercase hash', [['a', H.toUpperCase(), 1]], /not sha256 hex/],
  ['a negative size', [['a', H, -1]], /bad size/],
  ['a fractional size', [['a', H, 1.5]], /bad size/],
  ['a duplicate', [row('a'), row('a')], /row 1 .* duplicate/],
  ['an entry below a file', [row('a'), row('a/b')], /row 1 .* lies below the entry "a"/],
  ['an entry below a symlink', [row('a', ['symlink']), row('a/b/c')], /lies below the entry "a"/],
  ['an entry below a symlink, listed first', [row('a/b'), row('a', ['symlink'])], /row 0 .* lies below the entry "a"/],
];

for (const [what, manifest, message] of REFUSED) {
  test(`a manifest with ${what} is refused`, () => {
    const text = typeof manifest === 'string' ? manifest : JSON.stringify(manifest);
    assert.throws(() => parseManifest(text), (error: unknown) => error instanceof ManifestError && message.test(error.message));
  });
}

test('random mutations of a good manifest either parse to safe entries or are refused with a ManifestError', () => {
  const rng = seedrandom('16');
  const pieces = ['a', 'b', '..', '.', '', '/', '\\', 'ü', '\0', 'a/b', '../x'];
  for (let i = 0; i < 500; i++) {
    const rows: unknown[] = [];
    const n = 1 + Math.floor(rng() * 4);
    for (let j = 0; j < n; j++) {
      const parts = Array.from({ length: 1 + Math.floor(rng() * 3) }, () => pieces[Math.floor(rng() * pieces.length)]!);
      const path = (rng() < 0.1 ? '/' : '') + parts.join('/');
      rows.push(rng() < 0.2 ? [path, H, 1, 'symlink'] : [path, H, 1]);
    }
    let entries: ManifestEntry[];
    try {
      entries = parseManifest(JSON.stringify(rows));
    } catch (error) {
      assert.ok(error instanceof ManifestError, String(error));
      continue;
    }
    for (const entry of entries) {
      assert.ok(!entry.path.startsWith('/') && !entry.path.split('/').some((s) => s === '' || s === '.' || s === '..'), entry.path);
    }
    const paths = new Set(entries.map((e) => e.path));
    assert.equal(paths.size, entries.length);
    for (const entry of entries) for (const other of paths) assert.ok(!entry.path.startsWith(other + '/'), `${entry.path} below ${other}`);
  }
});

test('validateManifest takes entries from anywhere (a remote cache) with the same rules', () => {
  const good: ManifestEntry[] = [{ path: 'a', hash: H, size: 1 }, { path: 'b/c', hash: H, size: 1 }];
  assert.doesNotThrow(() => validateManifest(good));
  assert.throws(() => validateManifest([...good, { path: 'b/c/../../..', hash: H, size: 1 }]), ManifestError);
  assert.throws(() => validateManifest([{ path: 'a', hash: 'zz' as ContentHash, size: 1 }]), ManifestError);
});

test('every path of up to 6 characters from "a", ".", "/", "\\" and NUL is accepted exactly when it breaks no rule', () => {
  // The rules as the header states them, checked the slow way: validateManifest screens paths with string
  // built-ins first, and the screen must never let a broken path through.
  const breaksARule = (path: string): boolean => path === '' || path.startsWith('/') || path.includes('\\') || path.includes('\0') ||
    path.split('/').some((segment) => segment === '' || segment === '.' || segment === '..');
  const alphabet = ['a', '.', '/', '\\', '\0'];
  let paths = [''];
  let checked = 0;
  for (let length = 0; length <= 6; length++) {
    for (const path of paths) {
      checked++;
      const refused = ((): boolean => {
        try {
          validateManifest([{ path, hash: H, size: 1 }]);
          return false;
        } catch (error) {
          assert.ok(error instanceof ManifestError);
          return true;
        }
      })();
      assert.equal(refused, breaksARule(path), JSON.stringify(path));
    }
    paths = paths.flatMap((path) => alphabet.map((c) => path + c));
  }
  assert.equal(checked, (5 ** 7 - 1) / 4);
});
