// Uniform buffers shared by every dispatch whose uniforms have the same bytes.
//
// tfjs-backend-webgpu 4.22 writes each dispatch's uniforms (sizes, strides, a scalar or two) into a buffer taken
// from its pool for that dispatch and returned after the next submit: a queue.writeBuffer per dispatch (5-9 us
// of host time each, measured on the lent H100 and here). Most uniforms are the same every step (shapes do not
// change), so the buffer is kept per content instead, written once and never again. Uniforms that change every
// step (an optimizer's bias-corrected learning rate) add entries; past the bound the cache starts over, handing
// its buffers back through the backend's own uniform-disposal list (the pool gets them after the next submit,
// exactly as tfjs' own uniform buffers).
//
// Tried and dropped: reusing bind groups as well (createBindGroup is ~21 us per dispatch on the H100's host).
// A step's tensors get different pool buffers from one step to the next (the weights move to new buffers every
// update, so the pool's free lists drift): on lavapipe 1,616 of 1,683 bind groups per ResNet-50 step were new.
import * as tf from '@tensorflow/tfjs';

export type ProgramUniform = Array<{ type: string; data: number[] }>;
type UniformBinding = { offset: number; size: number; buffer: object };
interface WebgpuBackendInternals {
  makeUniforms(uniforms: ProgramUniform): UniformBinding;
  uniformPendingDisposal: object[];
}

const MAX_ENTRIES = 10_000;

export interface UniformCacheStats {
  hits: number;
  misses: number;
  size: number;
}

// One-element views for reading a number's bits without allocating per dispatch.
const float32 = new Float32Array(1);
const float32Bits = new Uint32Array(float32.buffer);
const int32 = new Int32Array(1);
const uint32 = new Uint32Array(1);

/**
 * The exact bytes the backend will write: float32 data by its bit pattern (-0 is not 0), integers as int32 or
 * uint32 would store them. No typed array per call: this runs for every dispatch (3.3 -> 0.9 us here).
 */
export function contentKey(uniforms: ProgramUniform): string {
  let key = '';
  for (const { type, data } of uniforms) {
    key += type === 'float32' ? 'f' : type === 'int32' ? 'i' : 'u';
    for (let i = 0; i < data.length; i++) {
      let bits: number;
      if (type === 'float32') {
        float32[0] = data[i]!;
        bits = float32Bits[0]!;
      } else if (type === 'int32') {
        int32[0] = data[i]!;
        bits = int32[0]!;
      } else {
        uint32[0] = data[i]!;
        bits = uint32[0]!;
      }
      key += i === 0 ? `${bits}` : `,${bits}`;
    }
    key += ';';
  }
  return key;
}

const patched = new WeakMap<object, { stats: UniformCacheStats; enabled: boolean }>();

/**
 * Makes the active webgpu backend keep one uniform buffer per uniform content (enabled false: stop, for new
 * dispatches); idempotent. Returns the counters, or undefined when webgpu is not the active backend.
 */
export function shareUniformBuffers(enabled = true): UniformCacheStats | undefined {
  if (tf.getBackend() !== 'webgpu') return undefined;
  const backend = tf.backend() as unknown as WebgpuBackendInternals;
  const existing = patched.get(backend);
  if (existing) {
    existing.enabled = enabled;
    return existing.stats;
  }
  const state = { stats: { hits: 0, misses: 0, size: 0 }, enabled };
  patched.set(backend, state);
  const make = backend.makeUniforms.bind(backend);
  const buffers = new Map<string, UniformBinding>();
  backend.makeUniforms = (uniforms: ProgramUniform) => {
    if (!state.enabled) return make(uniforms);
    const key = contentKey(uniforms);
    const cached = buffers.get(key);
    if (cached) {
      state.stats.hits++;
      return cached;
    }
    state.stats.misses++;
    if (buffers.size >= MAX_ENTRIES) {
      for (const binding of buffers.values()) backend.uniformPendingDisposal.push(binding.buffer);
      buffers.clear();
    }
    const binding = make(uniforms); // written now, queued for release after the next submit: keep it instead
    const pending = backend.uniformPendingDisposal;
    const at = pending.lastIndexOf(binding.buffer);
    if (at >= 0) pending.splice(at, 1);
    buffers.set(key, binding);
    state.stats.size = buffers.size;
    return binding;
  };
  return state.stats;
}
