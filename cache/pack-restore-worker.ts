// A second thread for restoring a large folder out of a pack (store.ts): the store's restore writes one half
// of the files, a worker the other, each object's range read, hashed against its name and only then written,
// exactly as the main thread does: file creation and hashing are CPU work the second core can share (the
// restore's figures: BENCHMARKS.md, "remote"). Below PARALLEL_RESTORE_MIN files a worker's start (~30 ms) is
// not worth it.
//
// The worker reads the packs through the main thread's descriptors (positional reads: the two threads never
// move a shared file offset), so it trusts nothing the main thread did not check when it opened them. It
// stops at the first object whose bytes do not hash to its name and says which; the main thread then treats
// the pack as damaged. The worker is an inline CommonJS script using only node builtins, so it runs the same
// from source (tsx) and from dist/ (as hash-pool.ts's).
import { Worker } from 'node:worker_threads';

/** From this many files in packs on, the restore takes a second thread (where there is a second core). */
export const PARALLEL_RESTORE_MIN = 2048;

/** Files for the worker, column by column. */
export interface PackedFiles {
  dests: string[];
  hashes: string[];
  fds: number[];
  offsets: number[];
  sizes: number[];
  /** Times (ms) the restored file gets: its pack's. */
  atimesMs: number[];
  mtimesMs: number[];
}

/** All written; or the first file (index into the columns) whose bytes were wrong, and what they hash to. */
export type WorkerOutcome = { ok: true } | { ok: false; index: number; got: string };

const WORKER_SOURCE = `
const { parentPort, workerData: f } = require('node:worker_threads');
const { readSync, openSync, fchmodSync, writeSync, futimesSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
(function restore() {
let buffer = Buffer.allocUnsafe(1 << 20);
for (let i = 0; i < f.dests.length; i++) {
  const size = f.sizes[i];
  if (size > buffer.length) buffer = Buffer.allocUnsafe(size);
  const bytes = buffer.subarray(0, size);
  let got = 0;
  while (got < size) {
    const n = readSync(f.fds[i], bytes, got, size - got, f.offsets[i] + got);
    if (n === 0) break;
    got += n;
  }
  const hash = got === size ? createHash('sha256').update(bytes).digest('hex') : 'a short read';
  if (hash !== f.hashes[i]) {
    parentPort.postMessage({ ok: false, index: i, got: hash });
    return;
  }
  const out = openSync(f.dests[i], 'wx', 0o644);
  try {
    fchmodSync(out, 0o644);
    for (let written = 0; written < size; ) written += writeSync(out, bytes, written, size - written);
    futimesSync(out, new Date(f.atimesMs[i]), new Date(f.mtimesMs[i]));
  } finally {
    closeSync(out);
  }
}
parentPort.postMessage({ ok: true });
})();
`;

/**
 * Starts writing the files on a worker thread; resolves with its outcome, rejects with the error that stopped
 * it (a file that exists, a full disk). The caller must wait for it before it deletes or renames their folder.
 */
export function restoreInWorker(files: PackedFiles): Promise<WorkerOutcome> {
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: files });
  return new Promise<WorkerOutcome>((resolve, reject) => {
    let outcome: WorkerOutcome | undefined;
    worker.on('message', (message: WorkerOutcome) => (outcome = message));
    worker.on('error', reject);
    worker.on('exit', (code) => (outcome ? resolve(outcome) : reject(new Error(`the restore worker exited with code ${code} before it finished`))));
  });
}
