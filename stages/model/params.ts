// The model's weights: plain tf.Variables held by name (Keras-style, e.g. `res2a_branch2a/kernel`), so that
// ImageNet ResNet50 .h5 weights and our own checkpoints load by name, and layers are pure functions of
// (store, name, input). No tf.layers: every layer asks the store for its variables with `variable()`, which
// creates them on the first call (deterministically from the store's seed and the variable's name, so the
// order in which layers run does not change the initial weights) and returns the same variable later.
import * as tf from '@tensorflow/tfjs';

export type Initializer = 'glorot-uniform' | 'he-normal' | 'zeros' | 'ones' | { normal: number };

export interface ParamOptions {
  /** Updated by the optimizer (default true). BN moving statistics are created with false. */
  trainable?: boolean;
  /**
   * L2 weight decay applies (default: the same as `trainable`). Matterport decays every trainable weight
   * except BN gamma/beta, so layers.ts passes `decay: false` for those (biases are decayed).
   */
  decay?: boolean;
}

/** Serial per store so two stores alive at once never clash in tfjs' global variable registry. */
let nextStoreSerial = 0;

export class ParameterStore {
  readonly seed: number;
  private readonly serial = nextStoreSerial++;
  private readonly variables = new Map<string, tf.Variable>();
  private readonly decay = new Map<string, boolean>();
  /** Created by a checkpoint load before the model asked for them: the first `variable()` call sets options. */
  private readonly unclaimed = new Set<string>();

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new Error(`ParameterStore: seed must be an integer, got ${seed}`);
    this.seed = seed;
  }

  /** Get-or-create: the first call creates with the initializer; later calls return the same variable (shape checked). */
  variable(name: string, shape: number[], init: Initializer, options: ParamOptions = {}): tf.Variable {
    const existing = this.variables.get(name);
    if (existing) {
      if (!tf.util.arraysEqual(existing.shape, shape)) {
        throw new Error(`parameter ${name}: requested shape [${shape}] but it exists with shape [${existing.shape}]`);
      }
      if (this.unclaimed.delete(name)) this.applyOptions(name, existing, options);
      return existing;
    }
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`parameter ${name}: bad shape [${shape}]`);
    const initial = tf.tidy(() => initialValue(shape, init, variableSeed(this.seed, name)));
    return this.register(name, initial, options);
  }

  /**
   * Adds a variable with a given value (used by checkpoint loading into a store the model has not built yet).
   * The model's first `variable()` call for this name then checks the shape and sets its options.
   */
  adopt(name: string, value: tf.Tensor, options: ParamOptions = {}): tf.Variable {
    if (this.variables.has(name)) throw new Error(`parameter ${name} already exists`);
    const variable = this.register(name, value.clone(), options);
    this.unclaimed.add(name);
    return variable;
  }

  get(name: string): tf.Variable | undefined {
    return this.variables.get(name);
  }

  has(name: string): boolean {
    return this.variables.has(name);
  }

  /** All names, sorted. */
  names(): string[] {
    return [...this.variables.keys()].sort();
  }

  /** The store's name of a variable (tfjs' own `variable.name` carries a per-store prefix). */
  nameOf(variable: tf.Variable): string | undefined {
    const prefix = `p${this.serial}/`;
    if (!variable.name.startsWith(prefix)) return undefined;
    const name = variable.name.slice(prefix.length);
    return this.variables.get(name) === variable ? name : undefined;
  }

  trainableVariables(): tf.Variable[] {
    return this.names().map((n) => this.variables.get(n)!).filter((v) => v.trainable);
  }

  /** Those L2 weight decay applies to: trainable and not marked `decay: false` (BN gamma/beta). */
  decayedVariables(): tf.Variable[] {
    return this.names()
      .filter((n) => this.decay.get(n) === true)
      .map((n) => this.variables.get(n)!)
      .filter((v) => v.trainable);
  }

  isDecayed(name: string): boolean {
    return this.decay.get(name) === true;
  }

  /** Freezes or unfreezes every variable whose name passes `select` (e.g. train only the heads). */
  setTrainable(select: (name: string) => boolean, trainable: boolean): number {
    let count = 0;
    for (const [name, variable] of this.variables) {
      if (!select(name)) continue;
      variable.trainable = trainable;
      count++;
    }
    return count;
  }

  /** Replaces a variable's value; shape-checked, the error names the variable. */
  assign(name: string, value: tf.Tensor): void {
    const variable = this.variables.get(name);
    if (!variable) throw new Error(`parameter ${name}: no such variable in the store`);
    if (!tf.util.arraysEqual(variable.shape, value.shape)) {
      throw new Error(`parameter ${name}: cannot assign shape [${value.shape}] to a variable of shape [${variable.shape}]`);
    }
    variable.assign(value.dtype === variable.dtype ? value : tf.tidy(() => value.cast(variable.dtype)));
  }

  /** Total number of scalar weights (trainable and not). */
  size(): number {
    let total = 0;
    for (const variable of this.variables.values()) total += variable.size;
    return total;
  }

  dispose(): void {
    for (const variable of this.variables.values()) variable.dispose();
    this.variables.clear();
    this.decay.clear();
    this.unclaimed.clear();
  }

  private register(name: string, initial: tf.Tensor, options: ParamOptions): tf.Variable {
    const trainable = options.trainable ?? true;
    const variable = tf.variable(initial, trainable, `p${this.serial}/${name}`);
    initial.dispose();
    this.variables.set(name, variable);
    this.decay.set(name, options.decay ?? trainable);
    return variable;
  }

  private applyOptions(name: string, variable: tf.Variable, options: ParamOptions): void {
    variable.trainable = options.trainable ?? true;
    this.decay.set(name, options.decay ?? variable.trainable);
  }
}

/** Keras' fan computation: kernels are [...receptive field, fanIn, fanOut]; a vector has fanIn = fanOut = size. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 0) return { fanIn: 1, fanOut: 1 };
  if (shape.length === 1) return { fanIn: shape[0]!, fanOut: shape[0]! };
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[shape.length - 2]! * receptive, fanOut: shape[shape.length - 1]! * receptive };
}

/** Keras defaults: glorot_uniform limit sqrt(6 / (fanIn + fanOut)); he_normal truncated, stddev sqrt(2 / fanIn). */
function initialValue(shape: number[], init: Initializer, seed: number): tf.Tensor {
  if (init === 'zeros') return tf.zeros(shape);
  if (init === 'ones') return tf.ones(shape);
  const { fanIn, fanOut } = fans(shape);
  if (init === 'glorot-uniform') {
    const limit = Math.sqrt(6 / Math.max(1, fanIn + fanOut));
    return tf.randomUniform(shape, -limit, limit, 'float32', seed);
  }
  if (init === 'he-normal') {
    // Keras' truncated normal divides by 0.8796... so the truncated distribution has the intended stddev.
    return tf.truncatedNormal(shape, 0, Math.sqrt(2 / Math.max(1, fanIn)) / 0.87962566103423978, 'float32', seed);
  }
  return tf.randomNormal(shape, 0, init.normal, 'float32', seed);
}

/** A per-variable seed from the store seed and the name (FNV-1a), independent of creation order. */
function variableSeed(seed: number, name: string): number {
  let hash = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
