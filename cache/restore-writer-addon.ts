// The streamed restore's optional C writer (speedups/restore-writer.c): the writer thread of
// streamed-restore.ts hands it each batch of files when it is compiled, and writes them itself otherwise.
//
// Compiled by `npm run build` (the `prepare` of `npm ci`), never during a pull: a pull does not wait for a
// compiler; without one (or without Node's headers) the JavaScript loop writes the same files.
import { fileURLToPath } from 'node:url';
import { buildNativeAddon, builtNativeAddon, NativeAddonUnavailableError, type NativeAddonSource } from '../runner/native-addon.js';

const RESTORE_WRITER: NativeAddonSource = {
  name: 'restore-writer',
  // Beside this module, in the source tree and in dist/ (the build copies it).
  sourceFile: fileURLToPath(new URL('./speedups/restore-writer.c', import.meta.url)),
};

/** The addon's entry point, as the writer thread calls it (see the C source for the arguments). */
export interface RestoreWriterAddon {
  writeFiles(prefix: string, paths: string, bytes: Uint8Array, offsets: Int32Array, sizes: Int32Array, seconds: number, chmod: boolean, out: Float64Array): number;
}

let found: string | null | undefined;

/** The compiled addon's path, when the build made it; looked up once per process. */
export function restoreWriterAddon(): string | undefined {
  if (found === undefined) {
    try {
      found = builtNativeAddon(RESTORE_WRITER) ?? null;
    } catch {
      found = null; // the source is not where it should be: the JavaScript loop writes
    }
  }
  return found ?? undefined;
}

/** The build's step: compiles the addon; says on stderr why when it cannot (the build goes on). */
export function prepareRestoreWriter(): void {
  try {
    buildNativeAddon(RESTORE_WRITER);
  } catch (error) {
    // Optional whatever went wrong (no compiler, no headers, a cache folder it may not write): never a failed build.
    const why = error instanceof NativeAddonUnavailableError ? error.message : `${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
    process.stderr.write(`note: the restore writer's C loop is not built (${why}); pulls write files from JavaScript\n`);
  }
}
