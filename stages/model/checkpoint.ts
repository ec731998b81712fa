// Checkpoints of a ParameterStore in the tfjs weights format, so standard tfjs tooling can read the weights:
//
//   <dir>/model.json    {format, generatedBy, weightsManifest: [{paths: ['weights.bin'], weights: [{name, shape,
//                        dtype}, …]}, {paths: ['extra.bin'], weights: […]}?], variables: {name: {trainable,
//                        decay}}, meta: {…caller's config, epoch, optimizer step…}}
//   <dir>/weights.bin   the store's variables, little-endian, in manifest order (tf.io.encodeWeights)
//   <dir>/extra.bin     optional extra named tensors (Adam's m/v, its step) for resuming mid-phase
//
// The directory is written under a temporary name and renamed into place (writeAtomically), so a crash never
// leaves a half-written checkpoint. Loading checks every shape before assigning anything, so a mismatched
// checkpoint leaves the store untouched; errors name the variable or the file.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { StageError } from '../stage-error.js';
import { writeAtomically } from '../write-atomically.js';
import type { ParameterStore } from './params.js';

export const checkpointFormat = 'runner-parameter-store';
const paramsFile = 'weights.bin';
const extraFile = 'extra.bin';

interface CheckpointJson {
  format: string;
  formatVersion: number;
  generatedBy: string;
  weightsManifest: tf.io.WeightsManifestConfig;
  variables: Record<string, { trainable: boolean; decay: boolean }>;
  meta: Record<string, unknown>;
}

export interface SaveOptions {
  /** Extra named tensors saved beside the weights (e.g. optimizer state), returned by loadCheckpoint. */
  extra?: Record<string, tf.Tensor>;
}

/** Writes the whole store (trainable or not) and `meta` to `dir`, replacing any previous checkpoint there. */
export async function saveCheckpoint(
  dir: string,
  store: ParameterStore,
  meta: Record<string, unknown>,
  options: SaveOptions = {},
): Promise<void> {
  const names = store.names();
  const params = await tf.io.encodeWeights(names.map((name) => ({ name, tensor: store.get(name)! })));
  const extraEntries = Object.entries(options.extra ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const extra = extraEntries.length > 0 ? await tf.io.encodeWeights(extraEntries.map(([name, tensor]) => ({ name, tensor }))) : undefined;
  const json: CheckpointJson = {
    format: checkpointFormat,
    formatVersion: 1,
    generatedBy: 'runner stages/model/checkpoint.ts',
    weightsManifest: [
      { paths: [paramsFile], weights: params.specs },
      ...(extra ? [{ paths: [extraFile], weights: extra.specs }] : []),
    ],
    variables: Object.fromEntries(
      names.map((name) => [name, { trainable: store.get(name)!.trainable, decay: store.isDecayed(name) }]),
    ),
    meta,
  };
  const text = JSON.stringify(json, null, 1); // fails early (before any file is written) on a non-JSON meta
  await writeAtomically(dir, async (tmp) => {
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, paramsFile), new Uint8Array(params.data as ArrayBuffer));
    if (extra) writeFileSync(join(tmp, extraFile), new Uint8Array(extra.data as ArrayBuffer));
    writeFileSync(join(tmp, 'model.json'), text);
  });
}

export interface LoadOptions {
  /** Every variable already in the store must be in the checkpoint (default true). */
  strict?: boolean;
}

export interface LoadResult {
  meta: Record<string, unknown>;
  /** The extra tensors saved with the checkpoint (caller owns and disposes them). */
  extra: Record<string, tf.Tensor>;
  /** Variables of the store that were overwritten. */
  loaded: string[];
  /** Checkpoint variables the store did not have yet: created with the saved values and flags. */
  created: string[];
  /** Store variables absent from the checkpoint (only when strict is false; strict makes this an error). */
  missing: string[];
}

/**
 * Loads a checkpoint into `store`. Variables the store does not have yet are created (so a model that builds its
 * variables lazily can load before its first forward pass); their shapes are checked when the model asks for them.
 */
export async function loadCheckpoint(dir: string, store: ParameterStore, options: LoadOptions = {}): Promise<LoadResult> {
  const { strict = true } = options;
  const json = readCheckpointJson(dir);
  const groups = json.weightsManifest.map((group) => ({ path: group.paths[0] ?? '', specs: group.weights }));
  const paramGroup = groups.find((g) => g.path === paramsFile);
  if (!paramGroup) throw new StageError(`checkpoint ${dir}: model.json has no weights group for ${paramsFile}`);
  const extraGroup = groups.find((g) => g.path === extraFile);

  const params = decodeGroup(dir, paramGroup.path, paramGroup.specs);
  const extra = extraGroup ? decodeGroup(dir, extraGroup.path, extraGroup.specs) : {};
  try {
    // Check everything before changing anything.
    const mismatched: string[] = [];
    for (const [name, tensor] of Object.entries(params)) {
      const variable = store.get(name);
      if (variable && !tf.util.arraysEqual(variable.shape, tensor.shape)) {
        mismatched.push(`${name} (checkpoint [${tensor.shape}], model [${variable.shape}])`);
      }
    }
    if (mismatched.length > 0) {
      throw new StageError(`checkpoint ${dir}: shape mismatch for ${listSome(mismatched)}`);
    }
    const missing = store.names().filter((name) => !(name in params));
    if (strict && missing.length > 0) {
      throw new StageError(`checkpoint ${dir}: missing variable${missing.length > 1 ? 's' : ''} ${listSome(missing)}`);
    }
    const loaded: string[] = [];
    const created: string[] = [];
    for (const [name, tensor] of Object.entries(params)) {
      if (store.has(name)) {
        store.assign(name, tensor);
        loaded.push(name);
      } else {
        store.adopt(name, tensor, json.variables[name] ?? {});
        created.push(name);
      }
    }
    return { meta: json.meta ?? {}, extra, loaded: loaded.sort(), created: created.sort(), missing };
  } catch (error) {
    tf.dispose(Object.values(extra));
    throw error;
  } finally {
    tf.dispose(Object.values(params));
  }
}

/** Only the `meta` object of a checkpoint (cheap: the weights are not read). */
export function readCheckpointMeta(dir: string): Record<string, unknown> {
  return readCheckpointJson(dir).meta ?? {};
}

function readCheckpointJson(dir: string): CheckpointJson {
  const file = join(dir, 'model.json');
  if (!existsSync(file)) throw new StageError(`checkpoint ${dir}: no model.json (not a checkpoint directory?)`);
  let json: CheckpointJson;
  try {
    json = JSON.parse(readFileSync(file, 'utf8')) as CheckpointJson;
  } catch (error) {
    throw new StageError(`checkpoint ${file}: not valid JSON (${(error as Error).message})`);
  }
  if (json.format !== checkpointFormat || !Array.isArray(json.weightsManifest)) {
    throw new StageError(`checkpoint ${file}: not a ${checkpointFormat} checkpoint (format ${JSON.stringify(json.format)})`);
  }
  json.variables ??= {};
  return json;
}

function decodeGroup(dir: string, path: string, specs: tf.io.WeightsManifestEntry[]): tf.NamedTensorMap {
  const file = join(dir, path);
  if (!existsSync(file)) throw new StageError(`checkpoint ${dir}: weights file ${path} is missing`);
  const expected = specs.reduce((sum, spec) => sum + spec.shape.reduce((a, b) => a * b, 1) * bytesPer(spec.dtype, file), 0);
  const actual = statSync(file).size;
  if (actual !== expected) {
    throw new StageError(`checkpoint ${file}: ${actual} bytes but the manifest describes ${expected} (truncated or mismatched file)`);
  }
  const buffer = readFileSync(file);
  const data = buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength) as ArrayBuffer;
  return tf.io.decodeWeights(data, specs);
}

function bytesPer(dtype: string, file: string): number {
  if (dtype === 'float32' || dtype === 'int32') return 4;
  if (dtype === 'bool') return 1;
  throw new StageError(`checkpoint ${file}: unsupported dtype ${dtype}`);
}

function listSome(items: string[]): string {
  const shown = items.slice(0, 5).join(', ');
  return items.length > 5 ? `${shown} and ${items.length - 5} more` : shown;
}
