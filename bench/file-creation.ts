// What creating a folder of 30k small files costs on this disk, the floor under every restore of stage1_train
// (a pull's streamed restore, a restore from the store, `tar -x`): the DSB2018 stage1_train files, read into
// memory first, written into a new folder (a) by one thread with the syscalls a streamed restore makes per file
// (open O_EXCL, write, futimes, fstat, close; cache/streamed-restore.ts), (b) split between two threads by
// folder, as the restore splits them, (c) by one thread through the restore's C loop (cache/speedups/
// restore-writer.c, when the build compiled it), and (d) by `tar -x` of the same files from a tar file in the page cache.
// Rounds alternate them, `sync` before each; the folders are deleted only at the end (a mass delete on
// this VM's `discard` mount slows the disk for a while: BENCHMARKS.md, "remote").
// Data: ../shared/data/dsb2018 relative to the repository, or BENCH_DSB2018_DIR; skipped with a message when absent.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, fstatSync, futimesSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { restoreWriterAddon, type RestoreWriterAddon } from '../cache/restore-writer-addon.js';
import type { BenchResult } from './run.js';
import { median } from './timing.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const dataDir = resolve(process.env['BENCH_DSB2018_DIR'] ?? join(repo, '../shared/data/dsb2018'));
const train = join(dataDir, 'stage1_train');
const ROUNDS = Number(process.env['BENCH_CREATION_ROUNDS'] ?? 3);

// The per-file loop, as a plain function both threads run (the worker gets its source).
const WRITE_FILES = `function writeFiles(root, paths, bytes) {
  const { openSync, writeSync, futimesSync, fstatSync, closeSync } = require('node:fs');
  const time = new Date(1.7e12);
  for (let i = 0; i < paths.length; i++) {
    const fd = openSync(root + '/' + paths[i], 'wx', 0o644);
    try {
      for (let at = 0; at < bytes[i].length; ) at += writeSync(fd, bytes[i], at, bytes[i].length - at);
      futimesSync(fd, time, time);
      fstatSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}`;

function writeFiles(root: string, paths: readonly string[], bytes: readonly Uint8Array[]): void {
  const time = new Date(1.7e12);
  for (let i = 0; i < paths.length; i++) {
    const fd = openSync(`${root}/${paths[i]!}`, 'wx', 0o644);
    try {
      const data = bytes[i]!;
      for (let at = 0; at < data.length; ) at += writeSync(fd, data, at, data.length - at);
      futimesSync(fd, time, time);
      fstatSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/** The same files through the C loop, in batches of up to 256 files as the restore's writer thread gets them. */
function writeFilesInC(addon: RestoreWriterAddon, root: string, paths: readonly string[], bytes: readonly Uint8Array[]): void {
  for (let from = 0; from < paths.length; from += 256) {
    const batch = bytes.slice(from, from + 256);
    const offsets = new Int32Array(batch.length);
    const sizes = new Int32Array(batch.length);
    let at = 0;
    batch.forEach((b, k) => {
      offsets[k] = at;
      sizes[k] = b.length;
      at += b.length;
    });
    const out = new Float64Array(batch.length * 6);
    const written = addon.writeFiles(`${root}/`, paths.slice(from, from + 256).map((p) => `${p}\0`).join(''), Buffer.concat(batch), offsets, sizes, 1.7e9, false, out);
    if (written !== batch.length) throw new Error(`the C loop returned ${written}`);
  }
}

function listFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) listFiles(path, out);
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

function makeFolders(root: string, paths: readonly string[]): void {
  for (const folder of new Set(paths.map((p) => dirname(p)))) mkdirSync(join(root, folder), { recursive: true });
}

async function twoThreads(root: string, paths: readonly string[], bytes: readonly Uint8Array[]): Promise<void> {
  // Split at a folder boundary near the middle, as the restore hands whole batches to its worker.
  let half = paths.length >> 1;
  while (half < paths.length && dirname(paths[half]!) === dirname(paths[half - 1]!)) half++;
  const worker = new Worker(`const { workerData: w, parentPort } = require('node:worker_threads');\n${WRITE_FILES}\nwriteFiles(w.root, w.paths, w.bytes);\nparentPort.postMessage('done');`, {
    eval: true,
    workerData: { root, paths: paths.slice(half), bytes: bytes.slice(half) },
  });
  const done = new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  writeFiles(root, paths.slice(0, half), bytes.slice(0, half));
  await done;
  await worker.terminate();
}

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(train)) return [{ name: 'file creation', value: Number.NaN, unit: 's', note: `no ${train}: set BENCH_DSB2018_DIR or lay out ../shared/data/dsb2018` }];
  const files = listFiles(train).sort();
  const paths = files.map((f) => relative(train, f));
  const bytes = files.map((f) => new Uint8Array(readFileSync(f)));
  const megabytes = bytes.reduce((sum, b) => sum + b.length, 0) / 1e6;
  const scratch = mkdtempSync(join(tmpdir(), 'bench-creation-'));
  const tarFile = join(scratch, 'stage1_train.tar');
  spawnSync('tar', ['-cf', tarFile, '-C', dataDir, 'stage1_train']);
  readFileSync(tarFile); // in the page cache, as the files above are in memory
  const one: number[] = [];
  const two: number[] = [];
  const inC: number[] = [];
  const tar: number[] = [];
  const addonFile = restoreWriterAddon();
  const addon = addonFile === undefined ? undefined : (createRequire(import.meta.url)(addonFile) as RestoreWriterAddon);
  let n = 0;
  const fresh = (): string => {
    const dir = join(scratch, `r${n++}`);
    mkdirSync(dir);
    spawnSync('sync');
    return dir;
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      let root = fresh();
      let t = performance.now();
      makeFolders(root, paths);
      writeFiles(root, paths, bytes);
      one.push((performance.now() - t) / 1000);
      root = fresh();
      t = performance.now();
      makeFolders(root, paths);
      await twoThreads(root, paths, bytes);
      two.push((performance.now() - t) / 1000);
      if (addon) {
        root = fresh();
        t = performance.now();
        makeFolders(root, paths);
        writeFilesInC(addon, root, paths, bytes);
        inC.push((performance.now() - t) / 1000);
      }
      root = fresh();
      t = performance.now();
      const extracted = spawnSync('tar', ['-xf', tarFile, '-C', root]);
      if (extracted.status !== 0) throw new Error(`tar -x exited ${extracted.status}: ${extracted.stderr}`);
      tar.push((performance.now() - t) / 1000);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const listed = (values: number[]): string => values.map((v) => v.toFixed(2)).join(', ');
  const note = `${paths.length} files, ${megabytes.toFixed(0)} MB, ${ROUNDS} rounds alternated`;
  return [
    { name: `one thread, the streamed restore's syscalls per file: seconds, median of ${ROUNDS}`, value: median(one), unit: 's', command: 'open(wx) + write + futimes + fstat + close per file, folders made first', note: `${listed(one)} s; ${note}` },
    { name: `two threads, split by folder: seconds, median of ${ROUNDS}`, value: median(two), unit: 's', command: 'the same loop, half the files on a worker thread', note: `${listed(two)} s` },
    addon
      ? { name: `one thread, the restore's C loop: seconds, median of ${ROUNDS}`, value: median(inC), unit: 's', command: 'cache/speedups/restore-writer.c, 256 files per call', note: `${listed(inC)} s` }
      : { name: "one thread, the restore's C loop", value: Number.NaN, unit: 's', note: 'not built here (npm run build compiles it where a C compiler and Node\'s headers are)' },
    { name: `\`tar -x\` of the same files from a tar file in the page cache: seconds, median of ${ROUNDS}`, value: median(tar), unit: 's', command: 'tar -xf stage1_train.tar', note: `${listed(tar)} s` },
  ];
}
