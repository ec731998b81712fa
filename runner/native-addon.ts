// Our optional N-API addons (runner/speedups/inotify.c for the watch daemon, the model's OpenBLAS kernels),
// compiled on first use with the system C compiler and loaded with require.
//
// Build: `cc -O2 -shared -fPIC -I<node>/include/node <source> -o <addon> <link flags>`; the result is kept in
// ~/.cache/runner (or RUNNER_NATIVE_CACHE) under the hash of the source, the link flags, Node's N-API version and
// the platform, and written by temp + rename so two processes starting at once never load half a file.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface NativeAddonSource {
  /** Cache file prefix and the name in messages ("inotify" -> "the inotify addon"). */
  name: string;
  /** Absolute path of the C source. */
  sourceFile: string;
  /** Linker flags after the source (e.g. ['-lopenblas']). */
  linkFlags?: readonly string[];
}

/** The addon cannot be built or loaded here; the message says what is missing. */
export class NativeAddonUnavailableError extends Error {
  override readonly name = 'NativeAddonUnavailableError';
}

/** Where Node's headers are: <prefix>/include/node beside <prefix>/bin/node. */
export function nodeIncludeDir(): string | undefined {
  const candidates = [join(dirname(dirname(process.execPath)), 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
  return candidates.find((dir) => existsSync(join(dir, 'node_api.h')));
}

/** Where the addon is kept once compiled: named by its source, link flags, N-API version and platform. */
function addonFile(addon: NativeAddonSource): string {
  const key = createHash('sha256').update(readFileSync(addon.sourceFile)).update((addon.linkFlags ?? []).join(' '))
    .update(`${process.versions.napi}/${process.platform}-${process.arch}`).digest('hex').slice(0, 16);
  const dir = process.env['RUNNER_NATIVE_CACHE'] ?? join(homedir(), '.cache', 'runner');
  return join(dir, `${addon.name}-${key}.node`);
}

/** The addon's path when it is compiled already; undefined otherwise (nothing is compiled). */
export function builtNativeAddon(addon: NativeAddonSource): string | undefined {
  const file = addonFile(addon);
  return existsSync(file) ? file : undefined;
}

/** The addon's path in the cache, compiled there first if missing; throws NativeAddonUnavailableError. */
export function buildNativeAddon(addon: NativeAddonSource): string {
  const linkFlags = addon.linkFlags ?? [];
  const file = addonFile(addon);
  const dir = dirname(file);
  if (existsSync(file)) return file;
  const include = nodeIncludeDir();
  if (!include) throw new NativeAddonUnavailableError(`Node's headers (node_api.h) were not found beside ${process.execPath}: install the nodejs headers (e.g. Debian's libnode-dev)`);
  mkdirSync(dir, { recursive: true });
  const temp = `${file}.tmp-${process.pid}`;
  try {
    const compiler = process.env['CC'] ?? 'cc';
    const built = spawnSync(compiler, ['-O2', '-shared', '-fPIC', `-I${include}`, addon.sourceFile, '-o', temp, ...linkFlags], { encoding: 'utf8' });
    if (built.error || built.status !== 0) {
      const why = built.error?.message ?? (built.stderr.trim().split('\n').slice(-3).join(' / ') || `exit ${built.status ?? built.signal}`);
      throw new NativeAddonUnavailableError(`could not compile the ${addon.name} addon with ${compiler} (set CC to another C compiler): ${why}`);
    }
    renameSync(temp, file);
  } finally {
    rmSync(temp, { force: true });
  }
  return file;
}

/** Builds (once) and loads the addon; throws NativeAddonUnavailableError when it cannot be built or loaded. */
export function loadNativeAddon<T>(addon: NativeAddonSource): T {
  const file = buildNativeAddon(addon);
  try {
    return createRequire(import.meta.url)(file) as T;
  } catch (error) {
    const why = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new NativeAddonUnavailableError(`could not load the ${addon.name} addon: ${why}`);
  }
}
