// The stage graph: stage B runs after stage A when a dep of B is, contains, or lies inside an out of A.
// Also where two stages claiming one out, a stage depending on its own out, and cycles are refused.
import { DiagnosticError, error, type Diagnostic, type SourceLocation } from './spec/diagnostics.js';
import { isWithin } from './workspace.js';

export interface GraphStage {
  name: string;
  deps: readonly string[];
  /** Everything the stage writes that the runner caches: outs and metrics. */
  outs: readonly string[];
  checkpoints?: readonly string[];
}

export interface Graph {
  /** Stage names, every stage after all of its upstream stages; ties keep declaration order. */
  order: string[];
  upstream: Map<string, string[]>;
  downstream: Map<string, string[]>;
}

/** Where a stage's dep/out number `index` is written, for diagnostics. */
export type FieldLocator = (stage: string, field: 'deps' | 'outs' | 'checkpoints', index: number) => SourceLocation | undefined;

function ancestors(path: string): string[] {
  const result: string[] = [];
  for (let at = path.lastIndexOf('/'); at > 0; at = path.lastIndexOf('/', at - 1)) result.push(path.slice(0, at));
  return result;
}

export function buildGraph(stages: readonly GraphStage[], where: FieldLocator): Graph {
  const diagnostics: Diagnostic[] = [];
  // out path -> owning stage (and the out's index, for locating it)
  const owner = new Map<string, { stage: string; index: number }>();
  for (const stage of stages) {
    stage.outs.forEach((out, index) => {
      const clash = [out, ...ancestors(out)].map((p) => owner.get(p)).find(Boolean);
      if (clash) {
        const what = clash.stage === stage.name ? `stage "${stage.name}" lists` : `stages "${clash.stage}" and "${stage.name}" both write`;
        diagnostics.push(error(`${what} the out "${out}"${owner.has(out) ? '' : ' (it lies inside another out)'}; every out has one owner`, where(stage.name, 'outs', index)));
      } else {
        owner.set(out, { stage: stage.name, index });
      }
    });
  }
  // Outs lying inside a given path (a dep on a directory that holds other stages' outs).
  const sortedOuts = [...owner.keys()].sort();
  const outsInside = (dir: string): string[] => {
    const prefix = dir + '/';
    let lo = 0;
    let hi = sortedOuts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sortedOuts[mid]! < prefix) lo = mid + 1;
      else hi = mid;
    }
    const found: string[] = [];
    for (let i = lo; i < sortedOuts.length && sortedOuts[i]!.startsWith(prefix); i++) found.push(sortedOuts[i]!);
    return found;
  };

  const upstream = new Map<string, string[]>(stages.map((s) => [s.name, []]));
  const downstream = new Map<string, string[]>(stages.map((s) => [s.name, []]));
  const edgeDep = new Map<string, number>(); // "A->B" -> index of B's dep that made the edge
  for (const stage of stages) {
    stage.deps.forEach((dep, index) => {
      const producers = [dep, ...ancestors(dep)].map((p) => owner.get(p)?.stage);
      producers.push(...outsInside(dep).map((o) => owner.get(o)?.stage));
      for (const producer of new Set(producers)) {
        if (producer === undefined) continue;
        if (producer === stage.name) {
          diagnostics.push(error(`stage "${stage.name}" depends on its own out "${dep}"`, where(stage.name, 'deps', index)));
          continue;
        }
        if (!edgeDep.has(`${producer}->${stage.name}`)) {
          edgeDep.set(`${producer}->${stage.name}`, index);
          upstream.get(stage.name)!.push(producer);
          downstream.get(producer)!.push(stage.name);
        }
      }
    });
    (stage.checkpoints ?? []).forEach((checkpoint, index) => {
      const inside = [checkpoint, ...ancestors(checkpoint)].find((p) => owner.has(p));
      if (inside) {
        diagnostics.push(error(`checkpoint "${checkpoint}" lies inside the out "${inside}", which is deleted before each run`, where(stage.name, 'checkpoints', index)));
      }
    });
  }
  if (diagnostics.length) throw new DiagnosticError(diagnostics);

  // Kahn's algorithm, seeded in declaration order so the order is stable.
  const remaining = new Map(stages.map((s) => [s.name, upstream.get(s.name)!.length]));
  const order: string[] = [];
  const ready = stages.filter((s) => remaining.get(s.name) === 0).map((s) => s.name);
  for (let i = 0; i < ready.length; i++) {
    const name = ready[i]!;
    order.push(name);
    for (const next of downstream.get(name)!) {
      const left = remaining.get(next)! - 1;
      remaining.set(next, left);
      if (left === 0) ready.push(next);
    }
  }
  if (order.length < stages.length) {
    const cycle = findCycle([...remaining].filter(([, n]) => n > 0).map(([name]) => name), upstream);
    const first = cycle[0]!;
    const second = cycle[1]!;
    // Point at the dep of `second` that makes it wait for `first`.
    const location = where(second, 'deps', edgeDep.get(`${first}->${second}`) ?? 0);
    throw new DiagnosticError([error(`dependency cycle: ${cycle.join(' -> ')}`, location)]);
  }
  return { order, upstream, downstream };
}

/** One cycle among the stages that Kahn's algorithm could not order, as [a, b, …, a] in run order. */
function findCycle(stuck: string[], upstream: Map<string, string[]>): string[] {
  const inStuck = new Set(stuck);
  const path: string[] = [];
  const onPath = new Set<string>();
  let node = stuck[0]!;
  // Walking upstream edges inside the stuck set must revisit a node.
  while (!onPath.has(node)) {
    path.push(node);
    onPath.add(node);
    node = upstream.get(node)!.find((u) => inStuck.has(u))!;
  }
  const loop = path.slice(path.indexOf(node));
  return [...loop.reverse(), loop[0]!];
}

/** Every stage `names` need, names included, in graph order. */
export function withUpstream(graph: Graph, names: Iterable<string>): Set<string> {
  const wanted = new Set<string>();
  const visit = (name: string): void => {
    if (wanted.has(name)) return;
    wanted.add(name);
    for (const up of graph.upstream.get(name) ?? []) visit(up);
  };
  for (const name of names) visit(name);
  return wanted;
}
