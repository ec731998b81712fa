// The gradient of Relu, dx = dy * step(x), as one program on webgpu. tfjs' stock gradFunc is three ops (step,
// a cast to float32, a multiply): three dispatches per ReLU of the network and step, ~56 us of JavaScript each
// on the lent H100 (the recipe's step has ~110 ReLUs in its backward pass). Other backends keep the stock
// ops, bit for bit. Same values on webgpu: 1 where x > 0, 0 elsewhere, NaN through (tfjs' step passes NaN on).
import * as tf from '@tensorflow/tfjs';
import { runElementwise, type ElementwiseFormula } from './webgpu/elementwise-program.js';

const RELU_GRADIENT: ElementwiseFormula = { name: 'relu_gradient', inputs: ['Dy', 'X'], uniforms: [],
  body: `let x = getXByOutputIndex(index);
         let result = getDyByOutputIndex(index) * select(select(0.0, 1.0, x > 0.0), x, isnan(x));` };

const reluGradient: tf.GradConfig = {
  kernelName: tf.Relu,
  inputsToSave: ['x'],
  gradFunc: (dy, saved) => {
    const [x] = saved as [tf.Tensor];
    const dyTensor = dy as tf.Tensor;
    if (tf.getBackend() === 'webgpu' && x.dtype === 'float32' && dyTensor.dtype === 'float32' && tf.util.arraysEqual(x.shape, dyTensor.shape)) {
      return { x: () => runElementwise(RELU_GRADIENT, [dyTensor, x], []) };
    }
    return { x: () => tf.mul(dyTensor, tf.cast(tf.step(x), 'float32')) };
  },
};

/** Replaces the Relu gradient for every backend (gradients are global in tfjs); the stock ops except on webgpu. */
export function registerReluGradient(): void {
  if (tf.getGradient(tf.Relu) !== reluGradient) tf.registerGradient(reluGradient);
}
