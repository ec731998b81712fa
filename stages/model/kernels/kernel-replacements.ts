// Our kernels registered in place of a backend's stock ones, with the stock ones remembered: a case ours leaves
// to stock (a strided conv) still reaches it, and a benchmark's "stock" arm can put them all back. One per
// backend (wasm/register.ts, webgpu/register.ts).
import * as tf from '@tensorflow/tfjs';

export class KernelReplacements {
  private readonly stock = new Map<string, tf.KernelConfig>();

  constructor(private readonly backendName: string) {}

  /** The stock kernel we replaced under `kernelName` (undefined while ours is not registered). */
  stockKernel(kernelName: string): tf.KernelConfig | undefined {
    return this.stock.get(kernelName);
  }

  /** Registers `config` in place of the backend's kernel of its name, remembering the stock one (idempotent). */
  replace(config: tf.KernelConfig): void {
    const current = tf.getKernel(config.kernelName, this.backendName);
    if (current === config) return;
    if (current) {
      if (!this.stock.has(config.kernelName)) this.stock.set(config.kernelName, current);
      tf.unregisterKernel(config.kernelName, this.backendName);
    }
    tf.registerKernel(config);
  }

  /** Puts back every stock kernel we replaced. */
  restore(): void {
    for (const [name, stock] of this.stock) {
      tf.unregisterKernel(name, this.backendName);
      tf.registerKernel(stock);
    }
    this.stock.clear();
  }
}
