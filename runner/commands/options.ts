// Flags shared by the commands that load a pipeline.
import type { Values } from './values.js';
import type { LoadOptions } from '../spec/pipeline.js';

export function loadOptions(values: Values): LoadOptions {
  const options: LoadOptions = { sets: (values['set'] as string[] | undefined) ?? [] };
  if (typeof values['profile'] === 'string') options.profile = values['profile'];
  if (typeof values['workspace'] === 'string') options.workspace = values['workspace'];
  if (typeof values['executor'] === 'string') options.executor = values['executor'];
  return options;
}
