// The warm directory walk (cache/tree-stats.ts) and its fast stat reads (cache/raw-fs.ts): whichever way the
// tree is walked — public fs API or Node's fs binding, one thread or two — the digest is the same, and it
// moves when a file is rewritten in place with the same size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { publicFs, rawFs, type FileStat } from '../../cache/raw-fs.js';
import { PARALLEL_MIN_DIRS, treeStats, treeStatsParallel } from '../../cache/tree-stats.js';

/** A tree with more top-level folders than the parallel walk's threshold, loose files and links at the top. */
function bigTree(): string {
  const root = mkdtempSync(join(tmpdir(), 'tree-stats-'));
  writeFileSync(join(root, 'a-top-file'), 'top');
  symlinkSync('a-top-file', join(root, 'b-link'));
  for (let d = 0; d < PARALLEL_MIN_DIRS + 10; d++) {
    const dir = join(root, `d${d}`, 'masks');
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 5; f++) writeFileSync(join(dir, `m${f}.png`), `mask ${d} ${f}`);
    writeFileSync(join(root, `d${d}`, 'image.png'), `image ${d}`);
  }
  writeFileSync(join(root, 'z-last-file'), 'last');
  return root;
}

function withEnv<T>(name: string, value: string, body: () => T): T {
  const saved = process.env[name];
  process.env[name] = value;
  try {
    return body();
  } finally {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  }
}

test('the fast stat reads give exactly what fs.lstatSync and fs.readdirSync give', () => {
  const root = bigTree();
  const fast = rawFs();
  const got: FileStat = { size: 0, mtimeMs: 0, ctimeMs: 0, ino: 0 };
  for (const file of ['a-top-file', 'd3/masks/m2.png', 'z-last-file']) {
    fast.lstat(join(root, file), got);
    const want = lstatSync(join(root, file));
    assert.deepEqual(got, { size: want.size, mtimeMs: want.mtimeMs, ctimeMs: want.ctimeMs, ino: want.ino }, file);
  }
  const listed = fast.readdir(root);
  assert.deepEqual(listed.names, readdirSync(root));
  assert.equal(listed.types[listed.names.indexOf('b-link')], 'symlink');
  assert.equal(listed.types[listed.names.indexOf('d0')], 'dir');
  assert.equal(listed.types[listed.names.indexOf('a-top-file')], 'file');
  assert.deepEqual(publicFs.readdir(root), listed);
});

test('one thread, two threads and the stats kept for a first hash all give the same digest', async () => {
  const root = bigTree();
  const serial = treeStats(root);
  const keep = new Map();
  assert.deepEqual(treeStats(root, keep), serial);
  assert.equal(keep.size, (PARALLEL_MIN_DIRS + 10) * 6 + 2, 'every file (not the link) has its Stats kept');
  const parallel = await withEnv('RUNNER_TREE_THREADS', '2', () => treeStatsParallel(root));
  assert.deepEqual(parallel, serial);
  const single = await withEnv('RUNNER_TREE_THREADS', '1', () => treeStatsParallel(root));
  assert.deepEqual(single, serial);
});

test('a file rewritten in place with the same size and its old mtime changes the digest, on either walk', async () => {
  const root = bigTree();
  const file = join(root, 'd40', 'masks', 'm1.png');
  const past = new Date(Date.now() - 60_000);
  utimesSync(file, past, past);
  const before = treeStats(root).statDigest;
  const { mtime } = lstatSync(file);
  writeFileSync(file, 'MASK 40 1'); // same length
  utimesSync(file, mtime, mtime); // mtime put back: only ctime tells
  assert.notEqual(treeStats(root).statDigest, before);
  const parallel = await withEnv('RUNNER_TREE_THREADS', '2', () => treeStatsParallel(root));
  assert.notEqual(parallel.statDigest, before);
  assert.equal(parallel.statDigest, treeStats(root).statDigest);
});
