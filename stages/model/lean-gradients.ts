// tf.variableGrads with a backward pass that frees memory as it goes.
//
// tfjs 4.22's backprop (tape.ts backpropagateGradients) keeps the gradient of every intermediate tensor, and the
// tensors every op saved for its gradient, until the whole backward pass ends: its peak memory is all forward
// activations plus all their gradients. Here, once an op's gradient has been computed, the gradients of its
// outputs and the tensors it saved are released (nothing later reads them: each tensor has one producing op,
// and the tape is walked in reverse). Peak memory is then about the activations alone, shrinking as backprop
// proceeds. The same arithmetic as tf.variableGrads, in the same order: results are identical.
//
// It drives the engine through members the public API does not type (startTape, endTape, startScope, the
// active tape); tfjs is pinned in package-lock.json, and test/model/lean-gradients.test.ts checks it against
// tf.variableGrads.
import * as tf from '@tensorflow/tfjs';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startScope(name?: string): void;
  endScope(result?: tf.TensorContainer): void;
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(name: string, f: () => T): T;
}

/**
 * Like tf.variableGrads(f, variables): the loss and the gradient of each trainable variable, by variable name.
 * `f` may await in the middle (a read-back: the train step reads the RPN's boxes between the trunk and the heads,
 * so the trunk runs once, taped). The tape and the forward scope stay open across the awaits: nothing else may run
 * tf ops meanwhile (the train loop runs one step at a time).
 */
export async function leanVariableGrads(f: () => tf.Scalar | Promise<tf.Scalar>, variables: readonly tf.Variable[]): Promise<{ value: tf.Scalar; grads: Record<string, tf.Tensor> }> {
  const xs = trainableOf(variables, 'leanVariableGrads');
  const engine = tf.engine() as unknown as EngineInternals;
  engine.startTape();
  engine.startScope('forward');
  let y: tf.Scalar;
  try {
    y = await f();
  } catch (error) {
    engine.endScope();
    engine.endTape();
    if (engine.state.gradientDepth === 0) dropTape(engine);
    throw error;
  }
  engine.endScope(y);
  engine.endTape();
  return backward(engine, xs, y, 'leanVariableGrads');
}

function trainableOf(variables: readonly tf.Variable[], where: string): tf.Variable[] {
  const xs = variables.filter((v) => v.trainable);
  if (xs.length === 0) throw new Error(`${where}: none of the variables is trainable`);
  return xs;
}

/** Frees what the recorded ops saved for backprop and forgets the tape. */
function dropTape(engine: EngineInternals): void {
  for (const node of engine.state.activeTape ?? []) for (const t of node.saved ?? []) t.dispose();
  engine.state.activeTape = null;
}

/** The backward pass over the recorded tape, freeing as it goes (see the top of this file). */
function backward(engine: EngineInternals, xs: readonly tf.Variable[], y: unknown, where: string): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  if (!(y instanceof tf.Tensor) || y.rank !== 0) throw new Error(`${where}: f must return a scalar tensor`);
  const tape = engine.state.activeTape ?? [];
  const filtered = nodesFromXsToY(tape, xs, y);
  const result = engine.tidy('backward', () => {
    const gradOf = new Map<number, tf.Tensor>([[y.id, tf.onesLike(y)]]);
    const isX = new Set(xs.map((x) => x.id));
    for (let i = filtered.length - 1; i >= 0; i--) {
      const node = filtered[i]!;
      if (!node.gradient) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
      const dys = node.outputs.map((o) => gradOf.get(o.id) ?? null);
      const inputGradients = node.gradient(dys);
      for (const [inputName, x] of Object.entries(node.inputs)) {
        const compute = inputGradients[inputName];
        if (!compute) throw new Error(`Cannot backprop through input ${inputName} of ${node.kernelName}.`);
        const dx = tf.tidy(compute);
        if (dx.dtype !== 'float32' || !tf.util.arraysEqual(dx.shape, x.shape)) {
          throw new Error(`Error in gradient for op ${node.kernelName}: input ${inputName} got a ${dx.dtype} gradient of shape [${dx.shape}] for shape [${x.shape}]`);
        }
        const current = gradOf.get(x.id);
        if (current === undefined) gradOf.set(x.id, dx);
        else {
          gradOf.set(x.id, tf.add(current, dx));
          current.dispose();
          if (!dys.includes(dx)) dx.dispose(); // a gradient may hand dy through unchanged: the next input may read it
        }
      }
      // This op is done: nothing reads its outputs' gradients or its saved tensors again.
      for (const o of node.outputs) {
        const dy = gradOf.get(o.id);
        if (dy === undefined || isX.has(o.id)) continue;
        gradOf.delete(o.id);
        if (![...gradOf.values()].includes(dy)) dy.dispose(); // unless handed through as an input's gradient
      }
      for (const t of node.saved ?? []) t.dispose();
    }
    const grads: Record<string, tf.Tensor> = {};
    for (const x of xs) {
      const g = gradOf.get(x.id);
      if (g) grads[x.name] = g;
    }
    for (const [id, g] of gradOf) if (!isX.has(id)) g.dispose();
    return { value: y as tf.Scalar, grads };
  });
  if (engine.state.gradientDepth === 0) dropTape(engine);
  return result;
}

/** The ops on a path from any of xs to y, inputs pruned to those that depend on xs (tape.ts getFilteredNodesXToY). */
function nodesFromXsToY(tape: readonly TapeNode[], xs: readonly tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((input) => fromX.has(input.id))) {
      for (const output of node.outputs) fromX.add(output.id);
      nodesFromX.add(node.id);
    }
  }
  const leadsToY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i]!;
    if (node.outputs.some((o) => leadsToY.has(o.id))) {
      for (const input of Object.values(node.inputs)) leadsToY.add(input.id);
      nodesToY.add(node.id);
    }
  }
  return tape
    .filter((node) => nodesFromX.has(node.id) && nodesToY.has(node.id))
    .map((node) => ({ ...node, inputs: Object.fromEntries(Object.entries(node.inputs).filter(([, input]) => fromX.has(input.id))) }));
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
