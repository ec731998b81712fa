// Loads Keras .h5 weights by layer name into a ParameterStore (Matterport's `load_weights(by_name=True)`), for
// the ImageNet initialisation from `resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`. Read with h5wasm
// (HDF5 compiled to WebAssembly: no native build, no Python).
//
// Keras h5 layout: the root (or its `model_weights` group, for a whole saved model) has an attribute
// `layer_names`; each layer is a group with an attribute `weight_names` (e.g. `conv1/kernel:0`, or in Keras 1
// files `conv1_W:0`), each naming a dataset relative to the layer group. Keras assigns a layer's weights by
// position, in the layer's own order: [kernel, bias] for convs and dense layers, [gamma, beta, moving_mean,
// moving_variance] for batch norm (Keras 1 called the last `running_std`, but it held the variance).
// Channels-last kernels ([kh, kw, in, out], "tf_dim_ordering") match our layout, so no transposition is needed.
//
// The store must already hold the model's variables (build the model once, e.g. on a 64x64 input). Every
// shape is checked before anything is assigned; a layer of the file with weights but no variable in the store
// is reported in `skipped`, never silently ignored.
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import h5wasm from 'h5wasm/node';
import type { Group, Dataset, Attribute } from 'h5wasm/node';
import { StageError } from '../stage-error.js';
import type { ParameterStore } from './params.js';
import * as tf from '@tensorflow/tfjs';

/** Keras' own order of a layer's weights; a store variable `<layer>/<suffix>` takes the file weight at its rank. */
const kerasWeightOrder = ['kernel', 'bias', 'gamma', 'beta', 'moving_mean', 'moving_variance'];
/** Names Keras 1 files use for the same weights. */
const legacyNames: Record<string, string> = { W: 'kernel', b: 'bias', running_mean: 'moving_mean', running_std: 'moving_variance' };

/** ResNet50's layers (conv1, bn_conv1, res2a_branch2a, bn5c_branch1, …): the part of the file Matterport loads. */
export const resnet50LayerPattern = /^(conv1|bn_conv1|res[2-5][a-z]_branch(2[abc]|1)|bn[2-5][a-z]_branch(2[abc]|1))$/;

export interface KerasH5Options {
  /** Which of the file's layers to load: all (default), ResNet50's, or a predicate on the layer name. */
  layers?: 'all' | 'resnet50-prefix' | ((layerName: string) => boolean);
}

export interface KerasH5Result {
  /** Layers whose weights were assigned. */
  loaded: string[];
  /** Layers of the file with weights that have no variables in the store. */
  skipped: string[];
  /** Layers with weights left out by the `layers` option. */
  excluded: string[];
  /** Number of variables assigned. */
  variables: number;
}

export async function loadKerasH5(file: string, store: ParameterStore, options: KerasH5Options = {}): Promise<KerasH5Result> {
  if (!existsSync(file)) throw new StageError(`keras h5 ${file}: file not found`);
  const select = layerFilter(options.layers ?? 'all');
  // h5wasm does not throw on a non-HDF5 file (it prints HDF5 diagnostics and fails later), so look first.
  if (!hasHdf5Signature(file)) throw new StageError(`keras h5 ${file}: not an HDF5 file (no HDF5 signature)`);
  await h5wasm.ready;
  const h5 = new h5wasm.File(file, 'r');
  try {
    const root = weightsRoot(h5, file);
    const pending: { name: string; values: Float32Array }[] = [];
    const result: KerasH5Result = { loaded: [], skipped: [], excluded: [], variables: 0 };
    for (const layer of stringList(root.attrs['layer_names'])) {
      const group = child(root, layer);
      if (!group || !('keys' in group)) throw new StageError(`keras h5 ${file}: layer ${layer} is listed but has no group`);
      const weightNames = stringList((group as Group).attrs['weight_names']);
      if (weightNames.length === 0) continue; // activation, padding, pooling…: nothing to load
      if (!select(layer)) {
        result.excluded.push(layer);
        continue;
      }
      const targets = store
        .names()
        .filter((n) => n.startsWith(`${layer}/`) && kerasWeightOrder.includes(n.slice(layer.length + 1)))
        .sort((a, b) => rank(a, layer) - rank(b, layer));
      if (targets.length === 0) {
        result.skipped.push(layer);
        continue;
      }
      if (targets.length !== weightNames.length) {
        throw new StageError(
          `keras h5 ${file}: layer ${layer} has ${weightNames.length} weights (${weightNames.join(', ')}) but the model has ` +
            `${targets.length} (${targets.join(', ')})`,
        );
      }
      weightNames.forEach((weightName, i) => {
        const target = targets[i]!;
        const dataset = child(group as Group, weightName);
        if (!dataset || !('shape' in dataset)) throw new StageError(`keras h5 ${file}: layer ${layer}: weight ${weightName} is missing`);
        const kind = weightKind(weightName);
        if (kind !== undefined && kind !== target.slice(layer.length + 1)) {
          throw new StageError(`keras h5 ${file}: layer ${layer}: weight ${weightName} would be assigned to ${target}`);
        }
        const shape = (dataset as Dataset).shape ?? [];
        const variable = store.get(target)!;
        if (shape.length !== variable.shape.length || shape.some((d, k) => d !== variable.shape[k])) {
          throw new StageError(
            `keras h5 ${file}: layer ${layer}: weight ${weightName} has shape [${shape}] but ${target} is [${variable.shape}]`,
          );
        }
        pending.push({ name: target, values: toFloat32((dataset as Dataset).value, `${file}: ${layer}/${weightName}`) });
      });
      result.loaded.push(layer);
    }
    // Every shape checked: now assign.
    for (const { name, values } of pending) {
      tf.tidy(() => store.assign(name, tf.tensor(values, store.get(name)!.shape)));
    }
    result.variables = pending.length;
    return result;
  } finally {
    h5.close();
  }
}

/** The HDF5 superblock signature sits at byte 0, or 512, 1024, 2048, … after a user block. */
function hasHdf5Signature(file: string): boolean {
  const signature = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
  const fd = openSync(file, 'r');
  try {
    const bytes = new Uint8Array(8);
    for (let offset = 0; offset <= 1 << 20; offset = offset === 0 ? 512 : offset * 2) {
      if (readSync(fd, bytes, 0, 8, offset) < 8) return false;
      if (signature.every((b, i) => bytes[i] === b)) return true;
    }
    return false;
  } finally {
    closeSync(fd);
  }
}

function layerFilter(layers: NonNullable<KerasH5Options['layers']>): (name: string) => boolean {
  if (layers === 'all') return () => true;
  if (layers === 'resnet50-prefix') return (name) => resnet50LayerPattern.test(name);
  return layers;
}

/** The group holding `layer_names`: the root of a weights file, or `model_weights` of a whole saved model. */
function weightsRoot(h5: Group, file: string): Group {
  if (h5.attrs['layer_names']) return h5;
  const nested = h5.keys().includes('model_weights') ? h5.get('model_weights') : null;
  if (nested && 'keys' in nested && (nested as Group).attrs['layer_names']) return nested as Group;
  throw new StageError(`keras h5 ${file}: no layer_names attribute (not a Keras weights file)`);
}

/** A child by a path relative to `group`, or null, without HDF5 error noise for missing names. */
function child(group: Group, path: string): ReturnType<Group['get']> {
  let current: Group = group;
  const parts = path.split('/');
  for (const [i, part] of parts.entries()) {
    if (!current.keys().includes(part)) return null;
    const next = current.get(part);
    if (i === parts.length - 1) return next;
    if (!next || !('keys' in next)) return null;
    current = next as Group;
  }
  return null;
}

function stringList(attribute: Attribute | undefined): string[] {
  if (!attribute) return [];
  const value = attribute.value;
  const list = Array.isArray(value) ? value : value === null ? [] : [value];
  return list.map((v) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : String(v)).replace(/\0+$/, ''));
}

/** `conv1/kernel:0` -> kernel, `conv1_W:0` -> kernel, `bn_conv1_gamma:0` -> gamma, `bn_conv1_running_std:0` ->
 *  moving_variance; else undefined (then only the position counts, as in Keras). */
function weightKind(weightName: string): string | undefined {
  const base = weightName.replace(/:\d+$/, '').split('/').pop() ?? '';
  for (const kind of kerasWeightOrder) if (base === kind || base.endsWith(`_${kind}`)) return kind;
  for (const [legacy, kind] of Object.entries(legacyNames)) if (base.endsWith(`_${legacy}`)) return kind;
  return undefined;
}

function rank(variableName: string, layer: string): number {
  return kerasWeightOrder.indexOf(variableName.slice(layer.length + 1));
}

function toFloat32(value: unknown, where: string): Float32Array {
  if (value instanceof Float32Array) return value;
  if (value instanceof Float64Array || value instanceof Int32Array || value instanceof Uint8Array) return Float32Array.from(value);
  if (typeof value === 'number') return Float32Array.of(value);
  throw new StageError(`keras h5 ${where}: unsupported data type`);
}
