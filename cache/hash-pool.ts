// Hashes many files on worker threads, in batches. A cold directory of 30k small files is bound by read
// latency and by sha256 on one core; a few workers reading synchronously overlap both. (fs/promises readFile
// is 4-10x slower than this for small files: each one is several thread-pool round trips.)
//
// The worker is an inline CommonJS script using only node builtins, so it runs the same from source (tsx)
// and from dist/ without a loader.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { ContentHash } from './types.js';

/** Below this many files to hash, the main thread does it (starting workers costs ~20-40 ms). */
export const PARALLEL_MIN_FILES = 256;
const BATCH_FILES = 128;

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const CHUNK = 128 << 10; // cache-sized, as in hash.ts
let chunk;
parentPort.on('message', (paths) => {
  const out = [];
  try {
    for (const p of paths) {
      chunk ??= Buffer.allocUnsafe(CHUNK);
      const h = createHash('sha256');
      const fd = openSync(p, 'r');
      try {
        for (;;) {
          const n = readSync(fd, chunk, 0, CHUNK, null);
          if (n === 0) break;
          h.update(n === CHUNK ? chunk : chunk.subarray(0, n));
        }
      } finally { closeSync(fd); }
      out.push(h.digest('hex'));
    }
    parentPort.postMessage({ hashes: out });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
});
`;

/** How many workers: a few more than cores, since cold reads wait on the disk rather than the CPU. */
function workerCount(files: number): number {
  const wanted = Math.min(8, availableParallelism() + 2);
  return Math.max(1, Math.min(wanted, Math.ceil(files / BATCH_FILES)));
}

/** sha256 of each file, in the order given. Rejects (naming the file's error) if any read fails. */
export async function hashFilesInParallel(paths: readonly string[]): Promise<ContentHash[]> {
  const hashes = new Array<ContentHash>(paths.length);
  let next = 0;
  const workers = Array.from({ length: workerCount(paths.length) }, () => new Worker(WORKER_SOURCE, { eval: true }));
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolvePromise, reject) => {
            let start = 0;
            const sendBatch = (): void => {
              if (next >= paths.length) return resolvePromise();
              start = next;
              next = Math.min(paths.length, next + BATCH_FILES);
              worker.postMessage(paths.slice(start, next));
            };
            worker.on('message', (reply: { hashes?: string[]; error?: string }) => {
              if (reply.error !== undefined || !reply.hashes) return reject(new Error(`hashing failed: ${reply.error}`));
              reply.hashes.forEach((h, i) => (hashes[start + i] = h as ContentHash));
              sendBatch();
            });
            worker.on('error', reject);
            sendBatch();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return hashes;
}
