// Adam with its update fused into three WebGPU shaders per variable (tfjs' Adam dispatches ~14 small kernels
// per variable: 2,255 of a ResNet-50 step's 5,481 dispatches on the H100, at ~56 us of JavaScript each).
// An experiment for the lent GPU (bench/device/webgpu-diagnose.ts, section "fusedAdam"): same arithmetic as
// tf.train.adam — m' = b1 m + (1-b1) g; v' = b2 v + (1-b2) g^2; x' = x - lr (m'/(1-b1^t)) / (sqrt(v'/(1-b2^t)) + eps).
// Checked there against tf.train.adam on the GPU before it is timed; not used by the stages until it passes.
import * as tf from '@tensorflow/tfjs';
import { webgpu_util } from '@tensorflow/tfjs-backend-webgpu';

type Uniform = { type: 'float32'; data: number[] };

/** An elementwise program over inputs of one shape: `body` sets `result` from the get<Name>ByOutputIndex reads. */
class ElementwiseProgram {
  variableNames: string[];
  uniforms: string;
  workgroupSize: [number, number, number] = [64, 1, 1];
  size = true;
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  shaderKey: string;

  constructor(name: string, inputs: string[], uniformNames: string[], shape: number[], private readonly body: string) {
    this.variableNames = inputs;
    this.uniforms = uniformNames.map((u) => `${u} : f32,`).join(' ');
    this.outputShape = shape;
    this.dispatchLayout = webgpu_util.flatDispatchLayout(shape);
    this.dispatch = webgpu_util.computeDispatch(this.dispatchLayout, shape, this.workgroupSize);
    this.shaderKey = `fusedAdam_${name}`;
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${this.body}
          setOutputAtIndex(index, result);
        }
      }
    `;
  }
}

interface WebgpuRunner {
  runWebGPUProgram(program: object, inputs: tf.TensorInfo[], dtype: tf.DataType, uniforms?: Uniform[]): tf.TensorInfo;
}

function run(program: ElementwiseProgram, inputs: tf.Tensor[], uniforms: Uniform[]): tf.Tensor {
  const backend = tf.backend() as unknown as WebgpuRunner;
  const info = backend.runWebGPUProgram(program, inputs, 'float32', uniforms);
  return tf.engine().makeTensorFromTensorInfo(info);
}

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
        const shape = value.shape;
        const m = run(new ElementwiseProgram('m', ['M', 'G'], ['b'], shape, 'let result = uniforms.b * getMByOutputIndex(index) + (1.0 - uniforms.b) * getGByOutputIndex(index);'),
          [moment.m, gradient], [{ type: 'float32', data: [this.beta1] }]);
        const v = run(new ElementwiseProgram('v', ['V', 'G'], ['b'], shape, 'let g = getGByOutputIndex(index); let result = uniforms.b * getVByOutputIndex(index) + (1.0 - uniforms.b) * g * g;'),
          [moment.v, gradient], [{ type: 'float32', data: [this.beta2] }]);
        const x = run(new ElementwiseProgram('x', ['X', 'M', 'V'], ['lr', 'c1', 'c2', 'eps'], shape,
          'let result = getXByOutputIndex(index) - uniforms.lr * (getMByOutputIndex(index) * uniforms.c1) / (sqrt(getVByOutputIndex(index) * uniforms.c2) + uniforms.eps);'),
          [value, m, v], [this.learningRate, c1, c2, this.epsilon].map((d) => ({ type: 'float32' as const, data: [d] })));
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
