// tf.tidy for a function that awaits and returns plain values (tf.tidy refuses promises): every tensor made while
// it runs is disposed at the end, except those kept. The scope stays open across the awaits, so nothing else may
// make tensors meanwhile that should outlive it (the stages run one model call at a time).
import * as tf from '@tensorflow/tfjs';

interface ScopeInternals {
  startScope(name?: string): void;
  endScope(): void;
}

export async function tidyAsync<T>(name: string, f: () => Promise<T>): Promise<T> {
  const engine = tf.engine() as unknown as ScopeInternals;
  engine.startScope(name);
  try {
    return await f();
  } finally {
    engine.endScope();
  }
}
