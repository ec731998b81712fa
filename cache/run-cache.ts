// The run-cache (DVC's): stage key -> the full record of a successful run, so a stage whose inputs were seen
// before (on another branch, by a colleague sharing the cache) is restored instead of run.
// Stored at <cacheDir>/runs/<key[0:2]>/<key>.json, written to a temp file and renamed. An entry that does
// not parse or does not have the record's shape is warned about, removed, and treated as a miss: a cache
// must never make a run wrong.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { PathHash, RunRecord, StageKey } from './types.js';

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

  constructor(cacheDir: string, opts: { warn?: (message: string) => void } = {}) {
    this.runsDir = join(cacheDir, 'runs');
    this.warn = opts.warn ?? ((message) => process.stderr.write(`warning: ${message}\n`));
  }

  entryPath(key: StageKey): string {
    return join(this.runsDir, key.slice(0, 2), `${key}.json`);
  }

  get(key: StageKey): RunRecord | undefined {
    return this.readEntry(this.entryPath(key), key);
  }

  put(record: RunRecord): void {
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

  /** Every readable entry (corrupt ones are warned about and removed on the way). */
  *all(): Iterable<RunRecord> {
    if (!existsSync(this.runsDir)) return;
    for (const shard of readdirSync(this.runsDir).sort()) {
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
