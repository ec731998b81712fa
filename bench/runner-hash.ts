// Hashing throughput and the cost of a warm directory check, at the cache level (no CLI):
//   1. sha256 of a 1 GiB file through cache/hash.ts (hashPath, as the runner calls it; and the one-thread
//      hashFileSync): page cache cold (the file's pages dropped with posix_fadvise DONTNEED) and warm; with
//      `sha256sum` and one in-memory buffer as references.
//   2. hashPath of the real stage1_train (bench/dsb2018-data.ts; 670 dirs, ~30k files) in fresh processes: with an
//      empty stat cache, then warm (stat cache file loaded from disk; start-up of node not counted).
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashFileSync, hashPath } from '../cache/hash.js';
import { dsb2018Data } from './dsb2018-data.js';
import type { BenchResult } from './run.js';
import { median } from './timing.js';

const GIB = 1 << 30;
const MB = 1e6;
const stage1Train = join(dsb2018Data, 'stage1_train');
const probe = fileURLToPath(new URL('./runner-hash-probe.ts', import.meta.url));

async function secondsAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

function seconds(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

/** Writes `bytes` of random-looking data (one 8 MiB random block, varied per chunk so no two chunks match). */
function writeBigFile(file: string, bytes: number): void {
  const block = randomBytes(8 << 20);
  const fd = openSync(file, 'w');
  try {
    for (let written = 0, i = 0; written < bytes; written += block.length, i++) {
      block.writeUInt32LE(i, 0);
      writeSync(fd, block, 0, Math.min(block.length, bytes - written));
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Drops one file's pages from the page cache (only that file's: the machine is shared). */
function dropFromPageCache(file: string): boolean {
  const script = 'import os,sys\nfd=os.open(sys.argv[1],os.O_RDONLY)\nos.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)\nos.close(fd)';
  return spawnSync('python3', ['-c', script, file]).status === 0;
}

async function fileThroughput(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-hash-'));
  const file = join(dir, 'one-gib.bin');
  const results: BenchResult[] = [];
  try {
    writeBigFile(file, GIB);
    const mbps = (s: number): number => GIB / MB / s;
    const dropped = dropFromPageCache(file);
    const cold = await secondsAsync(() => hashPath(dir, 'one-gib.bin'));
    results.push({
      name: 'sha256 of a 1 GiB file, page cache cold',
      value: mbps(cold), unit: 'MB/s', command: 'hashPath(dir, "one-gib.bin")',
      note: dropped ? 'pages dropped with posix_fadvise(DONTNEED); the virtual disk may still be cached by the host' : 'could not drop pages (no python3): warm',
    });
    // What the runner calls: from 64 MiB up, reading (thread pool) overlaps hashing (main thread).
    const warm = Math.min(await secondsAsync(() => hashPath(dir, 'one-gib.bin')), await secondsAsync(() => hashPath(dir, 'one-gib.bin')), await secondsAsync(() => hashPath(dir, 'one-gib.bin')));
    results.push({ name: 'sha256 of a 1 GiB file, page cache warm (best of 3)', value: mbps(warm), unit: 'MB/s', target: '≥ 1000 MB/s', ok: mbps(warm) >= 1000, command: 'hashPath(dir, "one-gib.bin")', note: 'reads on the thread pool overlap hashing, 1 MiB chunks' });
    const sync = Math.min(seconds(() => hashFileSync(file)), seconds(() => hashFileSync(file)), seconds(() => hashFileSync(file)));
    results.push({ name: 'the same with one thread, page cache warm (best of 3)', value: mbps(sync), unit: 'MB/s', command: 'hashFileSync(file)', note: '128 KiB chunks (the path for files under 64 MiB, and the hashing workers)' });
    const sum = seconds(() => spawnSync('sha256sum', [file]));
    results.push({ name: 'reference: sha256sum of the same file, warm', value: mbps(sum), unit: 'MB/s', command: 'sha256sum FILE' });
    const buffer = Buffer.alloc(256 << 20, 1);
    const inMemory = seconds(() => createHash('sha256').update(buffer).digest());
    results.push({ name: 'reference: sha256 of one 256 MiB buffer in memory (the ceiling)', value: buffer.length / MB / inMemory, unit: 'MB/s' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}

function runProbe(statCacheFile: string): { loadMs: number; hashMs: number; nfiles: number; wallMs: number } {
  const t = performance.now();
  const child = spawnSync(process.execPath, ['--import', 'tsx', probe, statCacheFile, dsb2018Data, 'stage1_train'], { encoding: 'utf8' });
  const wallMs = performance.now() - t;
  if (child.status !== 0) throw new Error(`runner-hash-probe failed: ${child.stderr}`);
  return { ...(JSON.parse(child.stdout) as { loadMs: number; hashMs: number; nfiles: number }), wallMs };
}

function directoryStatus(): BenchResult[] {
  if (!existsSync(stage1Train)) {
    return [{ name: `warm hashPath of stage1_train: skipped, real DSB2018 data not found at ${stage1Train}`, value: 0, unit: 's' }];
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-status-'));
  const statCacheFile = join(dir, 'stat-cache.json');
  try {
    const cold = runProbe(statCacheFile);
    const warm = [runProbe(statCacheFile), runProbe(statCacheFile), runProbe(statCacheFile)];
    const warmS = median(warm.map((w) => w.loadMs + w.hashMs)) / 1000;
    return [
      {
        name: `hashPath of stage1_train (${cold.nfiles} files), empty stat cache`,
        value: (cold.loadMs + cold.hashMs) / 1000, unit: 's', command: 'hashPath(ws, "stage1_train", StatCache.load(f))',
        note: 'page cache warm from earlier reads; files hashed on worker threads',
      },
      {
        name: 'hashPath of stage1_train, warm stat cache (median of 3 fresh processes)',
        value: warmS, unit: 's', target: '≤ 0.2 s', ok: warmS <= 0.2, command: 'same, after a first run saved the stat cache',
        note: `load ${median(warm.map((w) => w.loadMs)).toFixed(0)} ms + readdir/lstat ${median(warm.map((w) => w.hashMs)).toFixed(0)} ms; node+tsx start-up not counted (process wall ${median(warm.map((w) => w.wallMs)).toFixed(0)} ms)`,
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchResult[]> {
  return [...(await fileThroughput()), ...directoryStatus()];
}
