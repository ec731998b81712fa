// Adam with its update fused into two WebGPU programs per variable (tfjs' Adam dispatches ~14 small kernels
// per variable: 2,255 of a ResNet-50 step's 5,481 dispatches on the H100, at ~56 us of JavaScript each): m and v
// packed as the rows of one [2, n] tensor, one program for both, one for the variable (as stages/train/amsgrad.ts).
// An experiment for a GPU (bench/device/webgpu-diagnose.ts, section "fusedAdam"): same arithmetic as
// tf.train.adam — m' = b1 m + (1-b1) g; v' = b2 v + (1-b2) g^2; x' = x - lr (m'/(1-b1^t)) / (sqrt(v'/(1-b2^t)) + eps).
// Checked there against tf.train.adam on the GPU before it is timed; not used by the stages until it passes.
import * as tf from '@tensorflow/tfjs';
import { runIndexed, type IndexedFormula } from '../../stages/model/kernels/webgpu/indexed-program.js';

// P = [m; v], n = uniforms.threads elements a row.
const MOMENTS: IndexedFormula = { name: 'adam_moments', inputs: ['P', 'G'], uniforms: ['b1', 'b2'],
  body: `let n = uniforms.threads;
         let g = G[index];
         setOutputAtIndex(index, uniforms.b1 * P[index] + (1.0 - uniforms.b1) * g);
         setOutputAtIndex(index + n, uniforms.b2 * P[index + n] + (1.0 - uniforms.b2) * g * g);` };
const X: IndexedFormula = { name: 'adam_x', inputs: ['X', 'P'], uniforms: ['lr', 'c1', 'c2', 'eps'],
  body: 'setOutputAtIndex(index, X[index] - uniforms.lr * (P[index] * uniforms.c1) / (sqrt(P[index + uniforms.threads] * uniforms.c2) + uniforms.eps));' };

export class FusedAdam extends tf.Optimizer {
  static get className(): string {
    return 'FusedAdam';
  }

  private step = 0;
  private readonly moments = new Map<string, tf.Variable>();

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
        let moments = this.moments.get(name);
        if (!moments) {
          moments = tf.variable(tf.zeros([2, value.size]), false);
          this.moments.set(name, moments);
        }
        const next = runIndexed(MOMENTS, [moments, gradient], [this.beta1, this.beta2], [2, value.size], value.size);
        const x = runIndexed(X, [value, next], [this.learningRate, c1, c2, this.epsilon], value.shape, value.size);
        moments.assign(next);
        value.assign(x);
      }
    });
    this.incrementIterations();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }

  override dispose(): void {
    tf.dispose([...this.moments.values()]);
    this.moments.clear();
  }
}
