// Where the project's programs are, and how a test starts them (through tsx, from source: no build needed).
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const sharedData = fileURLToPath(new URL('../../../shared/data/dsb2018/', import.meta.url));

// tsx by absolute URL: `--import tsx` is resolved from the child's cwd, which is a temp dir in most tests.
const tsxLoader = import.meta.resolve('tsx');

/** argv prefix that runs the runner CLI from source. */
export const runnerCommand = [process.execPath, '--import', tsxLoader, fileURLToPath(new URL('../../runner/cli.ts', import.meta.url))];
/** argv prefix that runs the dsb2018 stage programs from source. */
export const stagesCommand = [process.execPath, fileURLToPath(new URL('../../bin/dsb2018.js', import.meta.url))];
