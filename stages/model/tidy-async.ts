// tf.tidy for a function that awaits (tf.tidy refuses promises): every tensor made while it runs is disposed at
// the end, except those in its result and those kept. The scope stays open across the awaits, so nothing else may
// make tensors meanwhile that should outlive it (the stages run one model call at a time).
import * as tf from '@tensorflow/tfjs';

interface ScopeInternals {
  startScope(name?: string): void;
  endScope(result?: tf.TensorContainer): void;
}

export async function tidyAsync<T extends tf.TensorContainer>(name: string, f: () => Promise<T>): Promise<T> {
  const engine = tf.engine() as unknown as ScopeInternals;
  engine.startScope(name);
  let result: T | undefined;
  try {
    result = await f();
    return result;
  } finally {
    engine.endScope(result);
  }
}
