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
// On webgpu the update is four fused programs per variable instead of thirteen op dispatches (each costs
// ~56 us of JavaScript on the lent H100 whatever its size): the same formulas in the same order, equal to the
// op-by-op update within float32 rounding (test/model/webgpu-kernels.test.ts, on any Vulkan device).
import * as tf from '@tensorflow/tfjs';
import { runElementwise, type ElementwiseFormula } from '../model/kernels/webgpu/elementwise-program.js';

export interface AmsgradOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  /** Keras' K.epsilon(). */
  epsilon?: number;
  /** webgpu: the fused update (default true); false keeps the op-by-op form there too (for comparisons). */
  fuseOnWebgpu?: boolean;
}

// The fused update, one program per output. `c1` and `c2` are 1 - beta1 and 1 - beta2, computed in double as
// the op-by-op form's scalars are; vhat' recomputes v' from v and g with the same expression as `v'` itself.
// The gradient is G * S, S a scalar (the clip factor; 1 where none is given): the multiply the op-by-op form
// does first, done here per element with the same float32 rounding.
const M: ElementwiseFormula = { name: 'amsgrad_m', inputs: ['M', 'G', 'S'], uniforms: ['b1', 'c1'],
  body: 'let g = getGByOutputIndex(index) * getSByOutputIndex(index); let result = getMByOutputIndex(index) * uniforms.b1 + g * uniforms.c1;' };
const V: ElementwiseFormula = { name: 'amsgrad_v', inputs: ['V', 'G', 'S'], uniforms: ['b2', 'c2'],
  body: 'let g = getGByOutputIndex(index) * getSByOutputIndex(index); let result = getVByOutputIndex(index) * uniforms.b2 + (g * g) * uniforms.c2;' };
const VHAT: ElementwiseFormula = { name: 'amsgrad_vhat', inputs: ['H', 'V', 'G', 'S'], uniforms: ['b2', 'c2'],
  body: `let g = getGByOutputIndex(index) * getSByOutputIndex(index);
         let v = getVByOutputIndex(index) * uniforms.b2 + (g * g) * uniforms.c2; let result = max(getHByOutputIndex(index), v);` };
const X: ElementwiseFormula = { name: 'amsgrad_x', inputs: ['X', 'M', 'H'], uniforms: ['lr', 'eps'],
  body: 'let result = getXByOutputIndex(index) - (getMByOutputIndex(index) * uniforms.lr) / (sqrt(getHByOutputIndex(index)) + uniforms.eps);' };

interface Slots {
  m: tf.Variable;
  v: tf.Variable;
  vhat: tf.Variable;
}

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
   * Applies one update. `grads` maps variable names (tf.Variable.name) to their gradients; `variables` maps the
   * same names to the variables to update; `gradientScale` (a scalar: the clip factor) multiplies every gradient
   * first.
   */
  applyGradients(grads: Record<string, tf.Tensor>, variables: Record<string, tf.Variable>, gradientScale?: tf.Scalar): void {
    this.iterations += 1;
    const t = this.iterations;
    const lrT = (this.learningRate * Math.sqrt(1 - this.beta2 ** t)) / (1 - this.beta1 ** t);
    const fused = this.fuseOnWebgpu && tf.getBackend() === 'webgpu';
    const scale = fused ? (gradientScale ?? tf.scalar(1)) : undefined;
    try {
      this.update(grads, variables, lrT, scale, gradientScale);
    } finally {
      if (scale && scale !== gradientScale) scale.dispose();
    }
  }

  private update(grads: Record<string, tf.Tensor>, variables: Record<string, tf.Variable>, lrT: number, scale: tf.Scalar | undefined, gradientScale: tf.Scalar | undefined): void {
    for (const [name, unscaled] of Object.entries(grads)) {
      const variable = variables[name];
      if (!variable) throw new Error(`amsgrad: gradient for unknown variable "${name}"`);
      const slots = this.slotsFor(name, variable);
      tf.tidy(() => {
        if (scale && unscaled.dtype === 'float32' && tf.util.arraysEqual(unscaled.shape, variable.shape)) {
          const m = runElementwise(M, [slots.m, unscaled, scale], [this.beta1, 1 - this.beta1]);
          const vhat = runElementwise(VHAT, [slots.vhat, slots.v, unscaled, scale], [this.beta2, 1 - this.beta2]);
          const v = runElementwise(V, [slots.v, unscaled, scale], [this.beta2, 1 - this.beta2]);
          const x = runElementwise(X, [variable, m, vhat], [lrT, this.epsilon]);
          slots.m.assign(m);
          slots.v.assign(v);
          slots.vhat.assign(vhat);
          variable.assign(x);
          return;
        }
        const grad = gradientScale ? unscaled.mul(gradientScale) : unscaled;
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

  /** The optimizer's state as named tensors (for checkpoints that resume mid-phase). */
  state(): Record<string, tf.Tensor> {
    const out: Record<string, tf.Tensor> = { 'amsgrad/iterations': tf.scalar(this.iterations, 'int32') };
    for (const [name, slots] of this.slots) {
      out[`amsgrad/m/${name}`] = slots.m;
      out[`amsgrad/v/${name}`] = slots.v;
      out[`amsgrad/vhat/${name}`] = slots.vhat;
    }
    return out;
  }

  /** Restores state written by state(); slots for variables absent from it start at zero. */
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
      slots[slot].assign(value);
    }
  }

  dispose(): void {
    for (const slots of this.slots.values()) {
      slots.m.dispose();
      slots.v.dispose();
      slots.vhat.dispose();
    }
    this.slots.clear();
  }

  private slotsFor(name: string, variable: tf.Variable): Slots {
    let slots = this.slots.get(name);
    if (!slots) {
      slots = tf.tidy(() => ({
        m: tf.variable(tf.zerosLike(variable), false),
        v: tf.variable(tf.zerosLike(variable), false),
        vhat: tf.variable(tf.zerosLike(variable), false),
      }));
      this.slots.set(name, slots);
    }
    return slots;
  }
}
