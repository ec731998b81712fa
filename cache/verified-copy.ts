// Reading a store object with its content checked in the same pass. An object is untrusted when it is read
// back (root can write a 0444 file, a hardlinked out edited in place writes the object, a disk can rot, a
// cache can be shared), so every restore hashes the bytes it hands to the workspace.
//
// Objects are opened with O_NOFOLLOW (an object is never a symlink: one is damage, not a way out of the
// store) and O_NONBLOCK (a fifo planted as an object must not hang the runner; regular files ignore the
// flag), then fstat'ed: anything but a regular file is damaged.
import { createHash } from 'node:crypto';
import { closeSync, constants, fchmodSync, fstatSync, futimesSync, openSync, readSync, writeSync, type Stats } from 'node:fs';
import type { ContentHash } from './types.js';

/** Cache-sized chunks, as in hash.ts: the bytes are hashed while still in the CPU's cache. */
const CHUNK_BYTES = 128 << 10;
let sharedChunk: Buffer | undefined;

/** What the bytes hashed to, or why they could not be read as an object. */
export type ReadOutcome = { hash: ContentHash } | { problem: string };

function openObject(path: string): { fd: number; stats: Stats } | { problem: string } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { problem: 'it is a symlink' };
    throw cause;
  }
  const stats = fstatSync(fd);
  if (!stats.isFile()) {
    closeSync(fd);
    return { problem: 'it is not a regular file' };
  }
  return { fd, stats };
}

/** sha256 of an object's bytes (for a hardlink or a clone: the bytes the workspace now shares). */
export function hashObject(path: string): ReadOutcome {
  const opened = openObject(path);
  if ('problem' in opened) return opened;
  const chunk = (sharedChunk ??= Buffer.allocUnsafe(CHUNK_BYTES));
  const hash = createHash('sha256');
  try {
    for (;;) {
      const n = readSync(opened.fd, chunk, 0, CHUNK_BYTES, null);
      if (n === 0) break;
      hash.update(n === CHUNK_BYTES ? chunk : chunk.subarray(0, n));
    }
  } finally {
    closeSync(opened.fd);
  }
  return { hash: hash.digest('hex') as ContentHash };
}

/**
 * Copies an object to `dest` (created, mode 0644, with the object's atime and mtime) and hashes the bytes in
 * the same pass: each chunk is read once, hashed and written. `dest` must not exist. Reading stops at the
 * size fstat gave (no read to see the end): the hash covers exactly the bytes written, so an object longer
 * or shorter than that still fails its check.
 */
export function copyHashing(object: string, dest: string): ReadOutcome {
  const opened = openObject(object);
  if ('problem' in opened) return opened;
  const chunk = (sharedChunk ??= Buffer.allocUnsafe(CHUNK_BYTES));
  const hash = createHash('sha256');
  try {
    const out = openSync(dest, 'wx', 0o644);
    try {
      fchmodSync(out, 0o644); // whatever the umask: a restored file is the stage's to rewrite
      for (let left = opened.stats.size; left > 0; ) {
        const n = readSync(opened.fd, chunk, 0, Math.min(CHUNK_BYTES, left), null);
        if (n === 0) break;
        left -= n;
        const bytes = n === CHUNK_BYTES ? chunk : chunk.subarray(0, n);
        hash.update(bytes);
        for (let written = 0; written < n; ) written += writeSync(out, bytes, written, n - written);
      }
      futimesSync(out, opened.stats.atime, opened.stats.mtime);
    } finally {
      closeSync(out);
    }
  } finally {
    closeSync(opened.fd);
  }
  return { hash: hash.digest('hex') as ContentHash };
}

/**
 * Writes bytes already checked against their name to a new file `dest` (mode 0644, with the given times, as
 * copyHashing leaves it): how an object read from a pack reaches the workspace.
 */
export function writeRestoredFile(dest: string, bytes: Buffer, times: { atime: Date; mtime: Date }): void {
  const out = openSync(dest, 'wx', 0o644);
  try {
    fchmodSync(out, 0o644);
    for (let written = 0; written < bytes.length; ) written += writeSync(out, bytes, written, bytes.length - written);
    futimesSync(out, times.atime, times.mtime);
  } finally {
    closeSync(out);
  }
}
