// Downloaded objects made durable in batches. A pull writes tens of thousands of small objects; making each
// one durable on its own (fsync, then rename) costs a journal commit per object. Here a verified object's
// temp file is staged, and a batch is committed at once: first the data of every temp is flushed to disk
// (one syncfs of the store's filesystem, `sync -f`, where the platform has it and the batch is large; else an
// fdatasync of each temp, all in flight together), and only then is each temp renamed to its content name.
//
// The contract (docs/remote-cache.md): a crash at any point leaves no wrong bytes under a content name. Before
// the flush returned, no temp has its name (a crash leaves temps, which gc removes); after it, the bytes a
// rename exposes are already on disk. The shard folders are not fsync'd: a rename lost in a crash loses the
// object (a later pull fetches it again), never its correctness.
import { execFile } from 'node:child_process';
import { close, fdatasync, mkdirSync, open, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';

/** Objects staged at most before a commit starts by itself (the rest wait for `commit`). */
const COMMIT_EVERY = 2048;

/** Flushes the data of these files (all in `dir`) to disk; rejects when it could not. */
export type FlushData = (dir: string, files: readonly string[]) => Promise<void>;

interface Staged {
  tmp: string;
  final: string;
  done: (stored: boolean) => void;
}

export class ObjectBatch {
  private staged: Staged[] = [];
  private committing: Promise<void> = Promise.resolve();
  private readonly madeShards = new Set<string>();

  constructor(
    /** The folder the temps are in (the store's tmp/). */
    private readonly tmpDir: string,
    private readonly onError: (final: string, error: Error) => void,
    private readonly flush: FlushData = flushData,
    private readonly commitEvery = COMMIT_EVERY,
  ) {}

  /** Stages a complete, verified temp file for `final`; resolves once it is there (true) or given up (false). */
  stage(tmp: string, final: string): Promise<boolean> {
    const stored = new Promise<boolean>((done) => this.staged.push({ tmp, final, done }));
    if (this.staged.length >= this.commitEvery) void this.commit();
    return stored;
  }

  /** Commits everything staged so far (after any commit already under way); resolves when it is done. */
  commit(): Promise<void> {
    const batch = this.staged;
    this.staged = [];
    this.committing = this.committing.then(() => this.commitBatch(batch));
    return this.committing;
  }

  private async commitBatch(batch: readonly Staged[]): Promise<void> {
    if (batch.length === 0) return;
    try {
      await this.flush(this.tmpDir, batch.map((s) => s.tmp));
    } catch (error) {
      for (const s of batch) this.giveUp(s, error as Error);
      return;
    }
    for (const s of batch) {
      try {
        const shard = dirname(s.final);
        if (!this.madeShards.has(shard)) {
          mkdirSync(shard, { recursive: true });
          this.madeShards.add(shard);
        }
        renameSync(s.tmp, s.final);
        s.done(true);
      } catch (error) {
        this.giveUp(s, error as Error);
      }
    }
  }

  private giveUp(s: Staged, error: Error): void {
    rmSync(s.tmp, { force: true });
    this.onError(s.final, error);
    s.done(false);
  }
}

/** Set once `sync -f` is found not to work here: later flushes go file by file straight away. */
let noSyncfs = process.platform !== 'linux';

/**
 * Up to this many files are flushed one by one: a syncfs would write every other dirty page of the disk too
 * (a pulled folder's files, written beside its pack while it streams in).
 */
const FLUSH_EACH_MAX = 16;

/** syncfs of the folder's filesystem through coreutils' `sync -f` for many files; else an fdatasync of each. */
export async function flushData(dir: string, files: readonly string[]): Promise<void> {
  if (!noSyncfs && files.length > FLUSH_EACH_MAX) {
    const synced = await new Promise<boolean>((resolve) => execFile('sync', ['-f', dir], (error) => resolve(!error)));
    if (synced) return;
    noSyncfs = true;
  }
  await Promise.all(files.map(fdatasyncFile));
}

function fdatasyncFile(file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    open(file, 'r', (openError, fd) => {
      if (openError) return reject(openError);
      fdatasync(fd, (syncError) => close(fd, () => (syncError ? reject(syncError) : resolve())));
    });
  });
}
