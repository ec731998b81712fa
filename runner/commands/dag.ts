// `runner dag`: the stage graph as text, Mermaid or Graphviz dot.
import { DAG_FORMATS, formatDag, type DagFormat } from '../dag-format.js';
import { didYouMean, fail } from '../spec/diagnostics.js';
import { loadPipeline } from '../spec/pipeline.js';
import type { Values } from './values.js';
import { loadOptions } from './options.js';

export async function dagCommand(file: string, values: Values): Promise<number> {
  const format = (values['format'] as string | undefined) ?? 'text';
  if (!(DAG_FORMATS as readonly string[]).includes(format)) {
    fail(`unknown format "${format}" in --format${didYouMean(format, DAG_FORMATS)}; choices: ${DAG_FORMATS.join(', ')}`);
  }
  const pipeline = await loadPipeline(file, loadOptions(values));
  process.stdout.write(formatDag(pipeline, format as DagFormat) + '\n');
  return 0;
}
