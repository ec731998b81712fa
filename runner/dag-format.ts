// `runner dag --format text|mermaid|dot`: the stage graph for a person, a Markdown page, or Graphviz.
import type { Pipeline } from './spec/pipeline.js';

export const DAG_FORMATS = ['text', 'mermaid', 'dot'] as const;
export type DagFormat = (typeof DAG_FORMATS)[number];

function quoted(text: string): string {
  return JSON.stringify(text);
}

export function formatDag(pipeline: Pipeline, format: DagFormat): string {
  const names = pipeline.stages.map((s) => s.name);
  switch (format) {
    case 'text': {
      const width = Math.max(...names.map((n) => n.length));
      return names
        .map((name) => {
          const up = pipeline.upstream[name] ?? [];
          return up.length ? `${name.padEnd(width)}  <- ${up.join(', ')}` : name;
        })
        .join('\n');
    }
    case 'mermaid': {
      const id = new Map(names.map((name, i) => [name, `s${i}`]));
      const lines = ['flowchart TD'];
      for (const name of names) lines.push(`  ${id.get(name)}[${quoted(name.replace(/"/g, '#quot;'))}]`);
      for (const name of names) for (const down of pipeline.downstream[name] ?? []) lines.push(`  ${id.get(name)} --> ${id.get(down)}`);
      return lines.join('\n');
    }
    case 'dot': {
      const lines = ['digraph pipeline {', '  rankdir=TB;'];
      for (const name of names) lines.push(`  ${quoted(name)};`);
      for (const name of names) for (const down of pipeline.downstream[name] ?? []) lines.push(`  ${quoted(name)} -> ${quoted(down)};`);
      lines.push('}');
      return lines.join('\n');
    }
  }
}
