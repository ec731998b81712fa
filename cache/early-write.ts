// A small file of the store written before it may be named. A pull knows a directory's manifest, and its
// pack's index, as soon as they arrive, but may name them only after the pack (the store's order: objects,
// then the index, then the manifest, each durable before its name appears). Written early, each temp is made
// durable on the thread pool while the pack streams in, so naming it costs a rename, not a flush in turn.
import { close, closeSync, fdatasync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

export class EarlyWrite {
  /** Settles once the temp's bytes are on disk (rejects with the flush's error). */
  private readonly durable: Promise<void>;
  private settled = false;

  /** Writes `bytes` to the new file `tmp` (mode 0444) and starts its flush; throws when it cannot write. */
  constructor(readonly tmp: string, bytes: Uint8Array) {
    const fd = openSync(tmp, 'wx', 0o444);
    try {
      for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
    } catch (error) {
      closeSync(fd);
      rmSync(tmp, { force: true });
      throw error;
    }
    this.durable = new Promise<void>((resolve, reject) => fdatasync(fd, (error) => close(fd, () => (error ? reject(error) : resolve()))));
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
