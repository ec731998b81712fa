// Adam with its update fused into three WebGPU shaders per variable (tfjs' Adam dispatches ~14 small kernels
// per variable: 2,255 of a ResNet-50 step's 5,481 dispatches on the H100, at ~56 us of JavaScript each).
// An experiment for the lent GPU (bench/device/webgpu-diagnose.ts, section "fusedAdam"): same arithmetic as
// tf.train.adam — m' = b1 m + (1-b1) g; v' = b2 v + (1-b2) g^2; x' = x - lr (m'/(1-b1^t)) / (sqrt(v'/(1-b2^t)) + eps).
// Checked there against tf.train.adam on the GPU before it is timed; not used by the stages until it passes.
import * as tf from '@tensorflow/tfjs';
import { runElementwise, type ElementwiseFormula } from '../../stages/model/kernels/webgpu/elementwise-program.js';

const M: ElementwiseFormula = { name: 'adam_m', inputs: ['M', 'G'], uniforms: ['b'],
  body: 'let result = uniforms.b * getMByOutputIndex(index) + (1.0 - uniforms.b) * getGByOutputIndex(index);' };
const V: ElementwiseFormula = { name: 'adam_v', inputs: ['V', 'G'], uniforms: ['b'],
  body: 'let g = getGByOutputIndex(index); let result = uniforms.b * getVByOutputIndex(index) + (1.0 - uniforms.b) * g * g;' };
const X: ElementwiseFormula = { name: 'adam_x', inputs: ['X', 'M', 'V'], uniforms: ['lr', 'c1', 'c2', 'eps'],
  body: 'let result = getXByOutputIndex(index) - uniforms.lr * (getMByOutputIndex(index) * uniforms.c1) / (sqrt(getVByOutputIndex(index) * uniforms.c2) + uniforms.eps);' };

export class FusedAdam extends tf.Optimizer {
  static get className(): string {
    return 'FusedAdam';
  }

  private step = 0;
  private readonly moments = new Map<string, { m: tf.Variable; v: tf.Variable }>();

  constructor(
    private readonly learningRate: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly epsilon = tf.backend().epsilon(),
  ) {
    super();
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | Array<{ name: string; tensor: tf.Tensor }>): void {
    const list = Array.isArray(variableGradients) ? variableGradients.map((v) => [v.name, v.tensor] as const) : Object.entries(variableGradients);
    this.step++;
    const c1 = 1 / (1 - this.beta1 ** this.step);
    const c2 = 1 / (1 - this.beta2 ** this.step);
    tf.tidy(() => {
      for (const [name, gradient] of list) {
        const value = tf.engine().registeredVariables[name];
        if (!value || !gradient) continue;
        let moment = this.moments.get(name);
        if (!moment) {
          moment = { m: tf.variable(tf.zerosLike(value), false), v: tf.variable(tf.zerosLike(value), false) };
          this.moments.set(name, moment);
        }
        const m = runElementwise(M, [moment.m, gradient], [this.beta1]);
        const v = runElementwise(V, [moment.v, gradient], [this.beta2]);
        const x = runElementwise(X, [value, m, v], [this.learningRate, c1, c2, this.epsilon]);
        moment.m.assign(m);
        moment.v.assign(v);
        value.assign(x);
      }
    });
    this.incrementIterations();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }

  override dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
  }
}
