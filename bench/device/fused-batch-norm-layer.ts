// tf.layers.batchNormalization's behaviour (training: batch statistics and moving averages with momentum 0.99;
// inference: the moving statistics) through stages/model/kernels/webgpu/batch-norm-training.ts: ten dispatches
// per layer and step on webgpu instead of forty-four. For the benchmark models of webgpu-setup.ts, switched on
// by their `fusedBatchNorm` option; checked against tf.layers' layer in test/model/webgpu-kernels.test.ts.
import * as tf from '@tensorflow/tfjs';
import { batchNormTraining, movingAverage } from '../../stages/model/kernels/webgpu/batch-norm-training.js';

export class FusedBatchNormalization extends tf.layers.Layer {
  static readonly className = 'FusedBatchNormalization';
  private readonly momentum = 0.99;
  private readonly epsilon = 1e-3;
  private gamma!: tf.LayerVariable;
  private beta!: tf.LayerVariable;
  private movingMean!: tf.LayerVariable;
  private movingVariance!: tf.LayerVariable;

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[shape.length - 1]!;
    this.gamma = this.addWeight('gamma', [channels], 'float32', tf.initializers.ones());
    this.beta = this.addWeight('beta', [channels], 'float32', tf.initializers.zeros());
    this.movingMean = this.addWeight('moving_mean', [channels], 'float32', tf.initializers.zeros(), undefined, false);
    this.movingVariance = this.addWeight('moving_variance', [channels], 'float32', tf.initializers.ones(), undefined, false);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const gamma = this.gamma.read() as tf.Tensor1D;
    const beta = this.beta.read() as tf.Tensor1D;
    if (kwargs['training'] !== true) {
      return tf.batchNorm(x, this.movingMean.read() as tf.Tensor1D, this.movingVariance.read() as tf.Tensor1D, beta, gamma, this.epsilon);
    }
    const { y, mean, variance } = batchNormTraining(x, gamma, beta, this.epsilon);
    this.movingMean.write(tf.tidy(() => movingAverage(this.movingMean.read() as tf.Tensor1D, mean, this.momentum)));
    this.movingVariance.write(tf.tidy(() => movingAverage(this.movingVariance.read() as tf.Tensor1D, variance, this.momentum)));
    return y;
  }

  override getClassName(): string {
    return FusedBatchNormalization.className;
  }
}
tf.serialization.registerClass(FusedBatchNormalization);
