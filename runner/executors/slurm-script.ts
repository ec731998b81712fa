// The files a Slurm job array reads on the compute node (all on the shared filesystem, under the workspace's
// .runner/tmp/slurm/<batch>/):
//   array.sh      the batch script sbatch submits: runs task-$SLURM_ARRAY_TASK_ID.sh
//   task-<i>.sh   one stage: cd to the workspace, exec the argv under exactly the stage's environment, then
//                 write the exit code to <i>.exit (temp file + rename, so a reader never sees half of it)
//   <i>.out       sbatch's --output for task i: a symlink to the stage's log, so the job's output file *is* the
//                 log the runner shows (slurmstepd opens it in append mode and follows the link)
// Every argv element and env value is written single-quoted, so nothing in it is ever re-split or expanded
// by the shell: `'` becomes `'\''`, and a value holding `$(…)`, `;` or backquotes stays a literal.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StageJob } from './executor.js';

/** POSIX single-quoting: the only character a single-quoted word can't hold is `'` itself. */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Variables Slurm sets in the job that the stage should see over the submitter's values (which `env -i`
 * would otherwise drop): the job's ids, its allocation, and the GPUs it was given.
 */
const FROM_SLURM = [
  'SLURM_JOB_ID', 'SLURM_ARRAY_JOB_ID', 'SLURM_ARRAY_TASK_ID', 'SLURM_JOB_NAME', 'SLURM_JOB_PARTITION', 'SLURM_JOB_NODELIST',
  'SLURMD_NODENAME', 'SLURM_CPUS_PER_TASK', 'SLURM_CPUS_ON_NODE', 'SLURM_MEM_PER_NODE', 'SLURM_MEM_PER_CPU', 'SLURM_JOB_GPUS',
  'SLURM_STEP_GPUS', 'CUDA_VISIBLE_DEVICES', 'GPU_DEVICE_ORDINAL', 'ROCR_VISIBLE_DEVICES', 'SLURM_SUBMIT_DIR', 'SLURM_TMPDIR', 'TMPDIR',
];

export interface BatchFiles {
  dir: string;
  arrayScript: string;
  /** sbatch --output pattern: `%a` is the array task index. */
  outputPattern: string;
  exitFile(index: number): string;
}

export function batchFiles(dir: string): BatchFiles {
  return {
    dir,
    arrayScript: join(dir, 'array.sh'),
    outputPattern: join(dir, '%a.out'),
    exitFile: (index) => join(dir, `${index}.exit`),
  };
}

/** The text of task-<i>.sh for one stage. */
export function taskScript(job: StageJob, exitFile: string): string {
  const assignments = Object.entries(job.env)
    .filter(([name]) => name !== '' && !name.includes('='))
    .map(([name, value]) => shellQuote(`${name}=${value}`));
  // `${X+"X=$X"}` adds X=value only when Slurm set X: an unset variable contributes no word at all.
  const fromSlurm = FROM_SLURM.map((name) => `\${${name}+"${name}=$${name}"}`);
  // The stage's argv goes through `sh -c 'exec "$0" "$@"'`, so even an argv[0] holding `=` (which env would
  // take for an assignment) is run as a program.
  const argv = job.shell ? ['/bin/sh', '-c', job.argv[0] ?? ''] : job.argv;
  const tmp = `${exitFile}.tmp`;
  return [
    '#!/bin/sh',
    `# runner: stage ${JSON.stringify(job.stage)} (written by runner/executors/slurm-script.ts)`,
    `if cd ${shellQuote(job.cwd)}; then`,
    '  env -i \\',
    ...assignments.map((a) => `    ${a} \\`),
    ...fromSlurm.map((a) => `    ${a} \\`),
    `    /bin/sh -c 'exec "$0" "$@"' \\`,
    `    ${argv.map(shellQuote).join(' ')}`,
    '  code=$?',
    'else',
    '  code=1',
    'fi',
    `printf '%s\\n' "$code" > ${shellQuote(tmp)} && mv -f ${shellQuote(tmp)} ${shellQuote(exitFile)}`,
    'exit "$code"',
    '',
  ].join('\n');
}

/** The batch script: dispatches array task i to task-<i>.sh. */
export function arrayScript(dir: string, stages: readonly string[]): string {
  return [
    '#!/bin/sh',
    `# runner: ${stages.length} stage(s) as one job array: ${stages.slice(0, 5).join(', ')}${stages.length > 5 ? ', …' : ''}`,
    `exec /bin/sh ${shellQuote(dir)}/task-"$SLURM_ARRAY_TASK_ID".sh`,
    '',
  ].join('\n');
}

/** Writes the batch's directory: array.sh, a task script per job, and the output links to the stage logs. */
export function writeBatch(files: BatchFiles, jobs: readonly StageJob[]): void {
  mkdirSync(files.dir, { recursive: true });
  jobs.forEach((job, index) => {
    writeFileSync(join(files.dir, `task-${index}.sh`), taskScript(job, files.exitFile(index)), { mode: 0o755 });
    symlinkSync(job.logFile, join(files.dir, `${index}.out`));
  });
  writeFileSync(files.arrayScript, arrayScript(files.dir, jobs.map((j) => j.stage)), { mode: 0o755 });
}
