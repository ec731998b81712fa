// Gradient checkpointing ("recompute instead of keep"): a segment of the network runs its forward pass without
// recording it on the gradient tape, keeping only its input; when the backward pass reaches the segment, the
// forward is run again under a fresh tape and differentiated with the incoming gradient. Memory held between
// the forward and backward passes drops from every intermediate of the segment to its input and output, for
// one extra forward of the segment. ResNet50 at 512 cannot train on wasm's 4 GiB heap without it.
//
// Built on tf.customGrad (whose forward runs untaped) and tf.engine().gradients. The segment's variables are
// passed as inputs of the custom op, so the outer tf.variableGrads sees the gradients flow to them.
import * as tf from '@tensorflow/tfjs';

/** What engine.gradients touches that the public API does not expose (see restoreOuterTape). */
interface EngineTapeState {
  state: { activeTape: unknown };
}

/**
 * y = segment(x), with the gradient computed by re-running `segment` during backprop.
 * x: the segment's input (any shape); variables: every trainable variable `segment` reads (gradients flow to
 * these; others it reads are treated as constants). `segment` must be deterministic and free of side effects
 * (no batch-norm moving-statistics update: it would run twice).
 */
export function recomputed<T extends tf.Tensor>(segment: (x: T) => T, x: T, variables: readonly tf.Variable[]): T {
  const op = tf.customGrad((...inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = inputs[0] as T;
    const save = inputs[inputs.length - 1] as tf.GradSaveFunc;
    save([input]);
    // Untaped, but its intermediates would live until the caller's scope ends: free them now.
    const value = tf.tidy(() => segment(input));
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const savedInput = saved[0] as T;
        return restoreOuterTape(() => {
          const { value: again, grads } = tf.engine().gradients(() => segment(savedInput), [savedInput, ...variables], dy, true);
          again.dispose();
          return grads.map((g, i) => g ?? tf.zerosLike(i === 0 ? savedInput : variables[i - 1]!));
        });
      },
    };
  });
  return op(x, ...variables) as T;
}

/**
 * engine.gradients, when not nested in another gradient computation, ends by setting the engine's active tape
 * to null. Called from inside a gradient function, that would be the outer backprop's tape, which the outer
 * call still reads when it finishes (to free the tensors its nodes saved). Put the outer one back.
 */
function restoreOuterTape<R>(fn: () => R): R {
  const engine = tf.engine() as unknown as EngineTapeState;
  const outer = engine.state.activeTape;
  try {
    return fn();
  } finally {
    engine.state.activeTape = outer;
  }
}
