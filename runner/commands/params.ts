// `runner params`: the effective params after --profile and --set, as YAML (or JSON).
import type { Values } from './values.js';
import { loadPipeline } from '../spec/pipeline.js';
import { loadOptions } from './options.js';

export async function paramsCommand(file: string, values: Values): Promise<number> {
  const pipeline = await loadPipeline(file, loadOptions(values));
  if (values['json']) {
    process.stdout.write(JSON.stringify(pipeline.params, null, 2) + '\n');
  } else {
    const { stringify } = await import('yaml');
    process.stdout.write(Object.keys(pipeline.params).length ? stringify(pipeline.params) : '{}\n');
  }
  return 0;
}
