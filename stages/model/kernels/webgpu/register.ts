// The training kernels we register for the webgpu backend (none yet: stock webgpu has every kernel the
// Mask R-CNN's backward pass needs; faster conv-backprop kernels are future work, see docs/backend.md).
import * as tf from '@tensorflow/tfjs';

export const webgpuTrainingKernels: readonly tf.KernelConfig[] = [];

/** Registers our webgpu kernels (idempotent). Returns the kernel names now provided by us. */
export function registerWebgpuTrainingKernels(): string[] {
  for (const config of webgpuTrainingKernels) {
    if (tf.getKernel(config.kernelName, 'webgpu') === config) continue;
    if (tf.getKernel(config.kernelName, 'webgpu')) tf.unregisterKernel(config.kernelName, 'webgpu');
    tf.registerKernel(config);
  }
  return webgpuTrainingKernels.map((config) => config.kernelName);
}
