// The run-cache (DVC's): stage key -> the full record of a successful run, so a stage whose inputs were seen
// before (on another branch, by a colleague sharing the cache) is restored instead of run.
// Two layouts, both read: <cacheDir>/runs/<key[0:2]>/<key>.json (one file per record, written to a temp file
// and renamed; what runs before the journal wrote), and run-journal.ts's journals, which `put` appends to
// (one file per run instead of one per stage) and `compact` folds into the first. An entry that does not parse
// or does not have the record's shape is warned about, removed (a journal line: skipped), and treated as a
// miss: a cache must never make a run wrong.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { RunJournal, parseJournal, readJournal, removeJournal } from './run-journal.js';
import type { PathHash, RunRecord, StageKey } from './types.js';

/** A new journal first folds the finished ones when there are more than this many (keeps reads short). */
const COMPACT_ABOVE = 16;

export type { RunRecord } from './types.js';

const HEX64 = /^[0-9a-f]{64}$/;

function isPathHash(value: unknown): value is PathHash {
  const v = value as PathHash;
  return typeof v === 'object' && v !== null && typeof v.path === 'string' && typeof v.hash === 'string' &&
    HEX64.test(v.hash) && typeof v.size === 'number' && typeof v.isDir === 'boolean';
}

/** Why `value` is not a RunRecord for `key`, or undefined when it is one. */
function recordProblem(value: unknown, key: string): string | undefined {
  const r = value as RunRecord;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'not an object';
  if (r.key !== key) return `key field ${JSON.stringify(r.key)} does not match the file name`;
  if (!(typeof r.cmd === 'string' || (Array.isArray(r.cmd) && r.cmd.every((a) => typeof a === 'string')))) return 'bad cmd';
  if (!Array.isArray(r.deps) || !r.deps.every(isPathHash)) return 'bad deps';
  if (!Array.isArray(r.outs) || !r.outs.every(isPathHash)) return 'bad outs';
  if (typeof r.params !== 'object' || r.params === null) return 'bad params';
  if (typeof r.durationMs !== 'number' || typeof r.createdAt !== 'string') return 'bad durationMs or createdAt';
  return undefined;
}

function tempName(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export class RunCache {
  readonly runsDir: string;
  private readonly madeShards = new Set<string>();
  private readonly warn: (message: string) => void;
  private readonly journal: RunJournal;
  /** Records of every journal, newest last, read at the first lookup; this process's own are added as put. */
  private journaled: Map<string, RunRecord> | undefined;
  private appended = false;

  constructor(cacheDir: string, opts: { warn?: (message: string) => void } = {}) {
    this.runsDir = join(cacheDir, 'runs');
    this.warn = opts.warn ?? ((message) => process.stderr.write(`warning: ${message}\n`));
    this.journal = new RunJournal(this.runsDir);
  }

  entryPath(key: StageKey): string {
    return join(this.runsDir, key.slice(0, 2), `${key}.json`);
  }

  /** The per-record layout first (older runs and compacted journals), then the journals. */
  get(key: StageKey): RunRecord | undefined {
    return this.readEntry(this.entryPath(key), key) ?? this.journalRecords().get(key);
  }

  /** Appends the record to this process's journal (one write; the journal is one file for the whole run). */
  put(record: RunRecord): void {
    const problem = recordProblem(record, record.key);
    if (problem) throw new Error(`refusing to store a malformed run record for ${record.key}: ${problem}`);
    if (!this.appended) {
      this.appended = true;
      if (this.journal.finished().length > COMPACT_ABOVE) this.compact();
    }
    this.journal.append(record);
    this.journaled?.set(record.key, record);
  }

  /** Writes the record in the per-record layout (compaction, and callers that want a file per record). */
  putFile(record: RunRecord): void {
    const { file, text } = this.prepare(record);
    const tmp = tempName(file);
    try {
      writeFileSync(tmp, text);
      renameSync(tmp, file);
    } catch (error) {
      rmSync(tmp, { force: true });
      throw error;
    }
  }

  /** Validates the record and makes its shard folder (once per process). */
  private prepare(record: RunRecord): { file: string; text: string } {
    const problem = recordProblem(record, record.key);
    if (problem) throw new Error(`refusing to store a malformed run record for ${record.key}: ${problem}`);
    const file = this.entryPath(record.key);
    const shard = dirname(file);
    if (!this.madeShards.has(shard)) {
      mkdirSync(shard, { recursive: true });
      this.madeShards.add(shard);
    }
    return { file, text: JSON.stringify(record, null, 1) + '\n' };
  }

  /**
   * Moves the records of finished journals into the per-record layout and deletes those journals; returns how
   * many records it wrote. Crash-safe in any order: a record file is complete before its journal goes.
   */
  compact(): number {
    let written = 0;
    for (const file of this.journal.finished()) {
      const text = readJournal(file);
      if (text === undefined) continue;
      for (const record of this.journalFileRecords(file, text)) {
        if (existsSync(this.entryPath(record.key))) continue;
        this.putFile(record);
        written++;
      }
      removeJournal(file);
    }
    this.journaled = undefined; // read again: what was folded is now in the per-record layout
    return written;
  }

  /** Ends this process's journal now (it is otherwise ended when the process exits). */
  close(): void {
    this.journal.close();
  }

  private journalRecords(): Map<string, RunRecord> {
    if (this.journaled) return this.journaled;
    this.journaled = new Map();
    for (const file of this.journal.files()) {
      const text = readJournal(file);
      if (text === undefined) continue;
      for (const record of this.journalFileRecords(file, text)) this.journaled.set(record.key, record);
    }
    return this.journaled;
  }

  private journalFileRecords(file: string, text: string): RunRecord[] {
    const records: RunRecord[] = [];
    const skip = (line: number, why: string): void => this.warn(`run-cache journal ${file} line ${line} is corrupt (${why}); skipped it`);
    for (const { line, value } of parseJournal(text, skip)) {
      const problem = recordProblem(value, (value as RunRecord | null)?.key ?? '');
      if (problem) skip(line, problem);
      else records.push(value as RunRecord);
    }
    return records;
  }

  /** Every readable entry of both layouts (corrupt ones are warned about and removed or skipped on the way). */
  *all(): Iterable<RunRecord> {
    const seen = new Set<string>();
    for (const record of this.fileRecords()) {
      seen.add(record.key);
      yield record;
    }
    for (const record of this.journalRecords().values()) if (!seen.has(record.key)) yield record;
  }

  private *fileRecords(): Iterable<RunRecord> {
    if (!existsSync(this.runsDir)) return;
    for (const shard of readdirSync(this.runsDir).sort()) {
      if (shard === 'journal') continue;
      for (const name of readdirSync(join(this.runsDir, shard)).sort()) {
        if (!name.endsWith('.json')) continue;
        const record = this.readEntry(join(this.runsDir, shard, name), name.slice(0, -'.json'.length));
        if (record) yield record;
      }
    }
  }

  private readEntry(file: string, key: string): RunRecord | undefined {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return undefined; // a plain miss
    }
    let problem: string | undefined;
    let value: unknown;
    try {
      value = JSON.parse(text);
      problem = recordProblem(value, key);
    } catch (error) {
      problem = (error as Error).message;
    }
    if (problem === undefined) return value as RunRecord;
    this.warn(`run-cache entry ${file} is corrupt (${problem}); removed it, the stage will run`);
    rmSync(file, { force: true });
    return undefined;
  }
}
