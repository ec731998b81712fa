// A small file of the store written before it may be named. A pull knows a directory's manifest, and its
// pack's index, as soon as they arrive, but may name them only after the pack (the store's order: objects,
// then the index, then the manifest, each durable before its name appears). Written early, each temp is made
// written and made durable on the thread pool while the pack streams in, so naming it costs a rename, not a
// flush in turn (and the thread reading the stream does not spend ~20 ms writing stage1_train's 3 MB manifest).
import { close, fdatasync, openSync, renameSync, rmSync, write } from 'node:fs';

/** Writes all of `bytes` at the file's start, then flushes and closes it; calls `done` with the first error. */
function writeDurably(fd: number, bytes: Uint8Array, done: (error: NodeJS.ErrnoException | null) => void): void {
  const finish = (error: NodeJS.ErrnoException | null): void => close(fd, () => done(error));
  const from = (at: number): void => {
    if (at >= bytes.length) {
      fdatasync(fd, finish);
      return;
    }
    write(fd, bytes, at, bytes.length - at, at, (error, written) => (error ? finish(error) : from(at + written)));
  };
  from(0);
}

export class EarlyWrite {
  /** Settles once the temp's bytes are on disk (rejects with the flush's error). */
  private readonly durable: Promise<void>;
  private settled = false;

  /**
   * Creates the new file `tmp` (mode 0444; throws when it cannot) and starts writing `bytes` to it and
   * flushing them; `bytes` must not change until the write is named or discarded.
   */
  constructor(readonly tmp: string, bytes: Uint8Array) {
    const fd = openSync(tmp, 'wx', 0o444);
    this.durable = new Promise<void>((resolve, reject) => writeDurably(fd, bytes, (error) => (error ? reject(error) : resolve())));
    // Seen by name(); a temp discarded before then has nothing to report.
    this.durable.catch(() => undefined);
  }

  /** Names the file `final` once its bytes are durable; throws (the temp removed) when they could not be. */
  async name(final: string): Promise<void> {
    this.settled = true;
    try {
      await this.durable;
      renameSync(this.tmp, final);
    } catch (error) {
      rmSync(this.tmp, { force: true });
      throw error;
    }
  }

  /** Removes the temp, unless it was named. */
  discard(): void {
    if (!this.settled) rmSync(this.tmp, { force: true });
    this.settled = true;
  }
}
