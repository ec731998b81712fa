// The lock file's entries held in memory during a run and written in batches: one write per second of
// finished stages instead of a read-modify-write per stage (1000 trivial stages would otherwise rewrite a
// 1000-entry file 1000 times). Entries arrive only after a stage's outs and run-cache record are saved, so a
// kill before a flush loses nothing but the record of finished work, which the run-cache restores next time.
// The whole file is rewritten each time, so with many entries a flush costs more (1000 entries, one stage
// depending on all of them: ~30-60 ms here): the next one is put off to keep flushing under ~5% of the run.
import { writeLock } from '../cache/lockfile.js';
import type { LockEntry } from '../cache/types.js';
import { describeUnexpected } from './failure.js';
import { fail } from './spec/diagnostics.js';
import { displayPath } from './spec/pipeline.js';

export class LockWriter {
  private timer: NodeJS.Timeout | undefined;
  /** How long the last flush took. */
  private lastFlushMs = 0;

  constructor(
    private readonly file: string,
    /** Shared with the plan context: what the run sees as "last recorded". */
    readonly entries: Record<string, LockEntry>,
    private readonly delayMs = 1000,
  ) {}

  set(stage: string, entry: LockEntry): void {
    this.entries[stage] = entry;
    // A batch that can't be written (a full disk) is kept: the next flush, at the latest the run's last, retries
    // and reports it.
    this.timer ??= setTimeout(() => {
      try {
        this.flush();
      } catch {
        this.timer = undefined;
      }
    }, Math.max(this.delayMs, 20 * this.lastFlushMs));
  }

  /** Drops entries of stages the pipeline no longer has. */
  retain(stages: Iterable<string>): void {
    const keep = new Set(stages);
    for (const name of Object.keys(this.entries)) if (!keep.has(name)) delete this.entries[name];
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const started = performance.now();
    try {
      writeLock(this.file, this.entries);
    } catch (cause) {
      const file = displayPath(this.file);
      fail(`cannot write the lock file ${file}: ${describeUnexpected(cause)}. The stages that finished are in the run-cache: the next run restores them.`);
    }
    this.lastFlushMs = performance.now() - started;
  }
}
