// Adam with the AMSGrad variant, as Keras 2 implements it (the original solution trained with
// `Adam(lr, amsgrad=True)`): tfjs' AdamOptimizer has no amsgrad switch, so this is our own.
//
//   m_t    = beta1 * m + (1 - beta1) * g
//   v_t    = beta2 * v + (1 - beta2) * g^2
//   vhat_t = max(vhat, v_t)
//   lr_t   = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
//   p      = p - lr_t * m_t / (sqrt(vhat_t) + epsilon)
//
// Gradient clipping (global norm 5) happens before applyGradients, in the model's train step.
//
// On webgpu the update is two programs per variable instead of thirteen op dispatches (each costs ~56 us of
// JavaScript on the lent H100 whatever its size): m, v and vhat live packed as the rows of one [3, n] tensor, so
// one program computes all three and a second one the variable. The same formulas in the same order, equal to
// the op-by-op update within float32 rounding (test/model/webgpu-kernels.test.ts, on any Vulkan device).
// Checkpoints see the same m/v/vhat tensors either way (state() / restore()).
//
// On wasm, where the backend registered it (kernels/native/amsgrad-update.ts), the op-by-op update below runs as
// one kernel per variable in C, with the same float32 results to the bit.
import * as tf from '@tensorflow/tfjs';
import { runIndexed, type IndexedFormula } from '../model/kernels/webgpu/indexed-program.js';
import { AMSGRAD_UPDATE, type AmsgradUpdateAttrs } from '../model/kernels/native/amsgrad-update.js';

export interface AmsgradOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  /** Keras' K.epsilon(). */
  epsilon?: number;
  /** webgpu: the fused update (default true); false keeps the op-by-op form there too (for comparisons). */
  fuseOnWebgpu?: boolean;
}

// The fused update. `c1` and `c2` are 1 - beta1 and 1 - beta2, computed in double as the op-by-op form's
// scalars are. The gradient is G * S, S a scalar (the clip factor; 1 where none is given): the multiply the
// op-by-op form does first, done here per element with the same float32 rounding. P is the packed state
// [m; v; vhat], n elements a row.
const stateBody = (gradient: string) => `let n = uniforms.threads;
         let g = ${gradient};
         let m = P[index] * uniforms.b1 + g * uniforms.c1;
         let v = P[index + n] * uniforms.b2 + (g * g) * uniforms.c2;
         setOutputAtIndex(index, m);
         setOutputAtIndex(index + n, v);
         setOutputAtIndex(index + 2 * n, max(P[index + 2 * n], v));`;
const STATE: IndexedFormula = { name: 'amsgrad_state', inputs: ['P', 'G', 'S'], uniforms: ['b1', 'c1', 'b2', 'c2'], body: stateBody('G[index] * S[0]') };
// With a weight-decay gradient folded in: g = (G + X * c) * S, X the variable (as the tape's sum of the loss
// gradient and the decay gradient X * c, then the clip factor).
const STATE_DECAYED: IndexedFormula = { name: 'amsgrad_state_decayed', inputs: ['P', 'G', 'S', 'X'], uniforms: [...STATE.uniforms, 'c'],
  body: stateBody('(G[index] + X[index] * uniforms.c) * S[0]') };
const VARIABLE: IndexedFormula = { name: 'amsgrad_variable', inputs: ['X', 'P'], uniforms: ['lr', 'eps'],
  body: 'setOutputAtIndex(index, X[index] - (P[index] * uniforms.lr) / (sqrt(P[index + 2 * uniforms.threads]) + uniforms.eps));' };

/** Separate m, v, vhat (cpu, wasm), or packed as the rows of one [3, n] variable (webgpu's fused update). */
type Slots = { m: tf.Variable; v: tf.Variable; vhat: tf.Variable } | { packed: tf.Variable; shape: number[] };
type SeparateSlots = Extract<Slots, { m: tf.Variable }>;

export class Amsgrad {
  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly fuseOnWebgpu: boolean;
  /** Number of updates applied so far (t in the formulas). */
  iterations = 0;
  private readonly slots = new Map<string, Slots>();

  constructor(options: AmsgradOptions) {
    this.learningRate = options.learningRate;
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? 1e-7;
    this.fuseOnWebgpu = options.fuseOnWebgpu ?? true;
  }

  /**
   * Whether a train step should hand the weight decay's gradients as coefficients (applyGradients' `decay`) and
   * leave the regulariser off its tape: on webgpu, where that saves two dispatches per decayed weight (each
   * ~56 us of JavaScript); elsewhere the tape's gradient costs as little and keeps cpu/wasm's arithmetic.
   */
  get foldsWeightDecay(): boolean {
    return tf.getBackend() === 'webgpu';
  }

  /**
   * Applies one update. `grads` maps variable names (tf.Variable.name) to their gradients; `variables` maps the
   * same names to the variables to update; `gradientScale` (a scalar: the clip factor) multiplies every gradient
   * first; `decay[name]` = c adds c * variable to that gradient before (the L2 regulariser's gradient).
   */
  applyGradients(grads: Record<string, tf.Tensor>, variables: Record<string, tf.Variable>, gradientScale?: tf.Scalar, decay: Record<string, number> = {}): void {
    this.iterations += 1;
    const t = this.iterations;
    const lrT = (this.learningRate * Math.sqrt(1 - this.beta2 ** t)) / (1 - this.beta1 ** t);
    const fused = this.fuseOnWebgpu && tf.getBackend() === 'webgpu';
    const scale = fused ? (gradientScale ?? tf.scalar(1)) : undefined;
    try {
      this.update(grads, variables, lrT, scale, gradientScale, decay);
    } finally {
      if (scale && scale !== gradientScale) scale.dispose();
    }
  }

  private update(grads: Record<string, tf.Tensor>, variables: Record<string, tf.Variable>, lrT: number, scale: tf.Scalar | undefined, gradientScale: tf.Scalar | undefined, decay: Record<string, number>): void {
    for (const [name, unscaled] of Object.entries(grads)) {
      const variable = variables[name];
      if (!variable) throw new Error(`amsgrad: gradient for unknown variable "${name}"`);
      const c = decay[name];
      tf.tidy(() => {
        if (scale && unscaled.dtype === 'float32' && tf.util.arraysEqual(unscaled.shape, variable.shape) && packedStateFits(variable.size)) {
          const slot = this.packedSlot(name, variable);
          const n = variable.size;
          const constants = [this.beta1, 1 - this.beta1, this.beta2, 1 - this.beta2];
          const state = c === undefined
            ? runIndexed(STATE, [slot.packed, unscaled, scale], constants, [3, n], n)
            : runIndexed(STATE_DECAYED, [slot.packed, unscaled, scale, variable], [...constants, c], [3, n], n);
          const x = runIndexed(VARIABLE, [variable, state], [lrT, this.epsilon], variable.shape, n);
          slot.packed.assign(state);
          variable.assign(x);
          return;
        }
        const slots = this.separateSlots(name, variable);
        if (tf.getBackend() === 'wasm' && tf.getKernel(AMSGRAD_UPDATE, 'wasm') && unscaled.dtype === 'float32' && unscaled.size === variable.size) {
          const attrs: AmsgradUpdateAttrs = { beta1: this.beta1, beta2: this.beta2, learningRate: lrT, epsilon: this.epsilon, decay: c ?? null };
          const inputs = { x: variable, g: unscaled, m: slots.m, v: slots.v, vhat: slots.vhat, ...(gradientScale ? { scale: gradientScale } : {}) };
          const [x, m, v, vhat] = tf.engine().runKernel(AMSGRAD_UPDATE, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
          slots.m.assign(m!);
          slots.v.assign(v!);
          slots.vhat.assign(vhat!);
          variable.assign(x!.reshape(variable.shape));
          return;
        }
        const summed = c === undefined ? unscaled : unscaled.add(variable.mul(c));
        const grad = gradientScale ? summed.mul(gradientScale) : summed;
        const m = slots.m.mul(this.beta1).add(grad.mul(1 - this.beta1));
        const v = slots.v.mul(this.beta2).add(grad.square().mul(1 - this.beta2));
        const vhat = tf.maximum(slots.vhat, v);
        slots.m.assign(m);
        slots.v.assign(v);
        slots.vhat.assign(vhat);
        variable.assign(variable.sub(m.mul(lrT).div(vhat.sqrt().add(this.epsilon))));
      });
    }
  }

  /**
   * Calls `use` with the optimizer's state as named tensors (for checkpoints that resume mid-phase): m, v, vhat
   * per variable whatever the layout, and the iteration count. The tensors are valid until `use` settles.
   */
  async withState<T>(use: (state: Record<string, tf.Tensor>) => Promise<T> | T): Promise<T> {
    const owned: tf.Tensor[] = [tf.scalar(this.iterations, 'int32')];
    const out: Record<string, tf.Tensor> = { 'amsgrad/iterations': owned[0]! };
    for (const [name, slots] of this.slots) {
      if ('packed' in slots) {
        const rows = tf.tidy(() => tf.unstack(slots.packed).map((row) => row.reshape(slots.shape)));
        owned.push(...rows);
        rows.forEach((row, k) => { out[`amsgrad/${['m', 'v', 'vhat'][k]}/${name}`] = row; });
      } else {
        out[`amsgrad/m/${name}`] = slots.m;
        out[`amsgrad/v/${name}`] = slots.v;
        out[`amsgrad/vhat/${name}`] = slots.vhat;
      }
    }
    try {
      return await use(out);
    } finally {
      tf.dispose(owned);
    }
  }

  /** Restores state written by withState(); slots for variables absent from it start at zero. */
  restore(state: Record<string, tf.Tensor>): void {
    const iterations = state['amsgrad/iterations'];
    this.iterations = iterations ? iterations.dataSync()[0] ?? 0 : 0;
    for (const [key, value] of Object.entries(state)) {
      const match = /^amsgrad\/(m|v|vhat)\/(.+)$/.exec(key);
      if (!match) continue;
      const [, slot, name] = match as unknown as [string, 'm' | 'v' | 'vhat', string];
      let slots = this.slots.get(name);
      if (!slots) {
        slots = { m: tf.variable(tf.zerosLike(value), false), v: tf.variable(tf.zerosLike(value), false), vhat: tf.variable(tf.zerosLike(value), false) };
        this.slots.set(name, slots);
      }
      if ('packed' in slots) slots = this.unpack(name, slots);
      slots[slot].assign(value);
    }
  }

  dispose(): void {
    for (const slots of this.slots.values()) disposeSlots(slots);
    this.slots.clear();
  }

  /** The variable's slots as m, v, vhat (unpacking a packed state first). */
  private separateSlots(name: string, variable: tf.Variable): SeparateSlots {
    const slots = this.slots.get(name);
    if (slots && 'packed' in slots) return this.unpack(name, slots);
    if (slots) return slots;
    const fresh = tf.tidy(() => ({
      m: tf.variable(tf.zerosLike(variable), false),
      v: tf.variable(tf.zerosLike(variable), false),
      vhat: tf.variable(tf.zerosLike(variable), false),
    }));
    this.slots.set(name, fresh);
    return fresh;
  }

  /** The variable's slots packed as one [3, n] variable (packing separate ones first: a restored checkpoint). */
  private packedSlot(name: string, variable: tf.Variable): Extract<Slots, { packed: tf.Variable }> {
    const slots = this.slots.get(name);
    if (slots && 'packed' in slots) return slots;
    const packed = tf.tidy(() => tf.variable(slots
      ? tf.stack([slots.m, slots.v, slots.vhat].map((t) => t.reshape([-1])))
      : tf.zeros([3, variable.size]), false));
    if (slots) disposeSlots(slots);
    const fresh = { packed, shape: [...variable.shape] };
    this.slots.set(name, fresh);
    return fresh;
  }

  private unpack(name: string, slots: Extract<Slots, { packed: tf.Variable }>): SeparateSlots {
    const separate = tf.tidy(() => {
      const [m, v, vhat] = tf.unstack(slots.packed).map((row) => tf.variable(row.reshape(slots.shape), false));
      return { m: m!, v: v!, vhat: vhat! };
    });
    slots.packed.dispose();
    this.slots.set(name, separate);
    return separate;
  }
}

/**
 * Whether a [3, n] float32 state fits one storage binding of the device (lavapipe: 128 MiB, so up to ~11M
 * elements; a larger variable takes the op-by-op update: 13 dispatches, not 2).
 */
function packedStateFits(n: number): boolean {
  const device = (tf.backend() as unknown as { device?: { limits?: { maxStorageBufferBindingSize?: number } } }).device;
  return 12 * n <= (device?.limits?.maxStorageBufferBindingSize ?? 128 * 1024 * 1024);
}

function disposeSlots(slots: Slots): void {
  if ('packed' in slots) slots.packed.dispose();
  else tf.dispose([slots.m, slots.v, slots.vhat]);
}
