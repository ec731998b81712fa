// A loaded pipeline is plain data, so it is cached: `.runner/tmp/specs/<key>.json`, where the key hashes the
// pipeline file's bytes, the load options and the environment that shape it, and the entry lists the other
// files it read (the params file) with their hashes. A hit skips YAML parsing, the schema and interpolation,
// which for a 1000-stage pipeline is most of a no-op `runner status`. Only pipelines that loaded without a
// diagnostic are cached, so every mistake is still reported from the source.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadOptions, Pipeline } from './pipeline.js';
import writeFileAtomic from 'write-file-atomic';

/** Bump when the Pipeline model or the loader's semantics change. */
const SPEC_CACHE_VERSION = 4;

interface Entry {
  version: number;
  inputs: { path: string; sha256: string }[];
  pipeline: Pipeline;
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function fileHash(path: string): string | undefined {
  try {
    return sha256(readFileSync(path));
  } catch {
    return undefined;
  }
}

export function specCacheKey(pipelineText: Buffer, path: string, workspace: string, options: LoadOptions): string {
  return sha256(
    JSON.stringify([
      SPEC_CACHE_VERSION, sha256(pipelineText), path, workspace, process.cwd(), options.profile ?? null, options.sets ?? [],
      options.executor ?? null, process.env['RUNNER_CACHE_DIR'] ?? null, process.env['RUNNER_GPUS'] ?? null,
    ]),
  );
}

export function readSpecCache(dir: string, key: string): Pipeline | undefined {
  let entry: Entry;
  try {
    entry = JSON.parse(readFileSync(join(dir, `${key}.json`), 'utf8')) as Entry;
  } catch {
    return undefined;
  }
  if (entry.version !== SPEC_CACHE_VERSION) return undefined;
  return entry.inputs.every((input) => fileHash(input.path) === input.sha256) ? entry.pipeline : undefined;
}

/** Best effort: a cache that can't be written only costs speed. */
export function writeSpecCache(dir: string, key: string, pipeline: Pipeline, inputs: string[]): void {
  const entry: Entry = {
    version: SPEC_CACHE_VERSION,
    inputs: inputs.map((path) => ({ path, sha256: fileHash(path) ?? '' })),
    pipeline,
  };
  const file = join(dir, `${key}.json`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileAtomic.sync(file, JSON.stringify(entry), { fsync: false }); // a lost entry only costs a re-parse
  } catch {
    // best effort: only speed is lost
  }
}
