// Bind-group layouts fetched once per compute pipeline instead of once per dispatch.
//
// tfjs-backend-webgpu 4.22 calls pipeline.getBindGroupLayout(0) for every dispatch; in Dawn for Node that call
// creates a new layout object each time (and the bind group is then validated against it). Caching it per
// pipeline took a ResNet-50 B=2 512 training step from 477 to 352 ms on an H100
// (bench/device/webgpu-diagnose.ts). A pipeline's layout never changes, so the cache is exact.
import * as tf from '@tensorflow/tfjs';

type Pipeline = { getBindGroupLayout(index: number): unknown };
type Device = Record<string, unknown> & {
  createComputePipeline?: (descriptor: unknown) => Pipeline;
  createComputePipelineAsync?: (descriptor: unknown) => Promise<Pipeline>;
};

const patched = new WeakSet<object>();

function withCachedLayouts(pipeline: Pipeline): Pipeline {
  const get = pipeline.getBindGroupLayout.bind(pipeline);
  const layouts = new Map<number, unknown>();
  pipeline.getBindGroupLayout = (index: number) => {
    if (!layouts.has(index)) layouts.set(index, get(index));
    return layouts.get(index);
  };
  return pipeline;
}

/**
 * Makes every compute pipeline the active webgpu backend creates from now on cache its bind-group layouts
 * (call before the first kernel runs: pipelines compiled earlier keep the stock behaviour). Idempotent.
 * Returns false when webgpu is not the active backend.
 */
export function cacheBindGroupLayouts(): boolean {
  if (tf.getBackend() !== 'webgpu') return false;
  const device = (tf.backend() as unknown as { device: Device }).device;
  if (patched.has(device)) return true;
  patched.add(device);
  const create = device.createComputePipeline?.bind(device);
  const createAsync = device.createComputePipelineAsync?.bind(device);
  if (create) device.createComputePipeline = (descriptor: unknown) => withCachedLayouts(create(descriptor));
  if (createAsync) device.createComputePipelineAsync = async (descriptor: unknown) => withCachedLayouts(await createAsync(descriptor));
  return true;
}
