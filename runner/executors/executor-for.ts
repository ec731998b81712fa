// Which executor runs a pipeline's stages, by name (`--executor`, the pipeline's `executor:`). Apart from
// executor.ts, so the interface and its implementations do not import each other.
import type { Pipeline, SlurmSettings } from '../spec/pipeline.js';
import type { Executor } from './executor.js';

/** `slurm` is the command line's `--slurm-*` flags, which override the pipeline's `slurm:`. */
export async function executorFor(name: string, pipeline?: Pipeline, slurm: SlurmSettings = {}): Promise<Executor> {
  switch (name) {
    case 'local':
      return new (await import('./local.js')).LocalExecutor();
    case 'slurm':
      return (await import('./slurm.js')).SlurmExecutor.forPipeline(pipeline, slurm);
    default:
      throw new Error(`no executor named "${name}"`);
  }
}
