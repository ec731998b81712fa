// --only / --until / --force name stages; a template's name (`eval`) stands for all its instances (`eval@a`…).
import { withUpstream, type Graph } from '../dag.js';
import { didYouMean, fail } from '../spec/diagnostics.js';
import type { Pipeline } from '../spec/pipeline.js';

export function resolveNames(pipeline: Pipeline, names: readonly string[], flag: string): string[] {
  const result: string[] = [];
  for (const name of names) {
    const matches = pipeline.stages.filter((s) => s.name === name || s.template === name).map((s) => s.name);
    if (matches.length === 0) {
      const known = pipeline.stages.map((s) => s.name);
      fail(`unknown stage "${name}" in ${flag}${didYouMean(name, [...known, ...pipeline.stages.map((s) => s.template)])}`);
    }
    result.push(...matches);
  }
  return result;
}

/** The stages a run covers, in graph order. */
export function selectStages(pipeline: Pipeline, only: readonly string[], until: readonly string[]): string[] {
  if (only.length === 0 && until.length === 0) return pipeline.stages.map((s) => s.name);
  const graph: Graph = { order: pipeline.stages.map((s) => s.name), upstream: new Map(Object.entries(pipeline.upstream)), downstream: new Map(Object.entries(pipeline.downstream)) };
  const wanted = new Set([...resolveNames(pipeline, only, '--only'), ...withUpstream(graph, resolveNames(pipeline, until, '--until'))]);
  return graph.order.filter((name) => wanted.has(name));
}
