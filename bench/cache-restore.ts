// What verifying restores costs (cache/store.ts, cache/verified-copy.ts): Store.restore, which hashes every
// byte it hands to the workspace, against the same restore without the hash (what the store did before: a
// copyFile or a link, nothing read back), per link mode, on a folder of many files and on one large file, page
// cache warm. And the runner's whole restore step, which hashes the restored out for the stat cache: before,
// an unverified copy and then a hash that read every file again; now the verified copy, whose hashes go to the
// stat cache, and a walk of stats.
//
// In /dev/shm where there is one (BENCH_RESTORE_DIR overrides): the figure wanted is the CPU cost of the
// verification, which this machine's disk would bury under its file-creation stalls after mass deletes (a
// restore here deletes and creates 1000 files per repeat; see docs/cache.md, Run-cache).
import { constants, copyFileSync, chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { dirManifest, hashPath } from '../cache/hash.js';
import { StatCache } from '../cache/stat-cache.js';
import { Store } from '../cache/store.js';
import type { LinkMode, ManifestEntry, PathHash } from '../cache/types.js';
import type { BenchResult } from './run.js';
import { median } from './timing.js';

const FILES = 1000;
const FILE_BYTES = 64 << 10;
const LARGE_BYTES = 128 << 20;
const REPEAT = 5;

/** The store's pre-verification restore: each object copied (cloned where possible) or linked, no read-back. */
function unverifiedRestore(store: Store, workspace: string, entry: PathHash, manifest: ManifestEntry[]): void {
  const target = join(workspace, entry.path);
  const tmp = join(dirname(target), `.unverified-${randomBytes(4).toString('hex')}`);
  const put = (hash: string, dest: string): void => {
    const object = store.objectPath(hash as PathHash['hash']);
    if (store.link === 'hardlink') return linkSync(object, dest);
    copyFileSync(object, dest, store.link === 'copy' ? 0 : constants.COPYFILE_FICLONE);
    chmodSync(dest, 0o644);
    const { atime, mtime } = statSync(object);
    utimesSync(dest, atime, mtime);
  };
  if (entry.isDir) {
    mkdirSync(tmp);
    for (const file of manifest) {
      mkdirSync(dirname(join(tmp, file.path)), { recursive: true });
      put(file.hash, join(tmp, file.path));
    }
  } else {
    put(entry.hash, tmp);
  }
  rmSync(target, { recursive: true, force: true });
  renameSync(tmp, target);
}

/** Medians (ms) of the two, run alternately after a warm-up of each, so both see the same disk and load. */
async function timePair(a: () => Promise<unknown>, b: () => Promise<unknown>): Promise<[number, number]> {
  await a();
  await b();
  const times: [number[], number[]] = [[], []];
  for (let i = 0; i < REPEAT; i++) {
    for (const [k, fn] of [a, b].entries()) {
      const t0 = performance.now();
      await fn();
      times[k]!.push(performance.now() - t0);
    }
  }
  return [median(times[0]), median(times[1])];
}

export async function run(): Promise<BenchResult[]> {
  const base = process.env['BENCH_RESTORE_DIR'] ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const root = mkdtempSync(join(base, 'bench-restore-'));
  const results: BenchResult[] = [];
  try {
    const workspace = join(root, 'ws');
    mkdirSync(join(workspace, 'many.source'), { recursive: true });
    for (let i = 0; i < FILES; i++) writeFileSync(join(workspace, 'many.source', `f${i}`), randomBytes(FILE_BYTES));
    writeFileSync(join(workspace, 'large.source'), randomBytes(LARGE_BYTES));
    for (const link of ['copy', 'reflink-or-copy', 'hardlink'] as LinkMode[]) {
      const store = new Store(join(root, 'cache'), { link });
      const many = { ...(await store.save(workspace, 'many.source')), path: 'many' };
      const large = { ...(await store.save(workspace, 'large.source')), path: 'large' };
      const manifests = new Map([[many, await dirManifest(workspace, 'many.source')], [large, []]]);
      for (const [what, entry, bytes] of [[`${FILES} files of 64 KiB`, many, FILES * FILE_BYTES], ['one 128 MiB file', large, LARGE_BYTES]] as const) {
        const [plain, verified] = await timePair(async () => unverifiedRestore(store, workspace, entry, manifests.get(entry)!), () => store.restore(workspace, entry));
        results.push({
          name: `restore ${what}, ${link}, verified`,
          value: verified,
          unit: 'ms',
          command: `Store.restore (link: ${link}), files in ${base}`,
          note: `unverified (no read-back) ${plain.toFixed(0)} ms in the same loop; verified ${(bytes / 1e6 / (verified / 1000)).toFixed(0)} MB/s`,
        });
      }
      // The runner's restore step: restore, then the out's hash for the stat cache (runner/stage-run.ts).
      const [before, after] = await timePair(
        async () => {
          unverifiedRestore(store, workspace, many, manifests.get(many)!);
          await hashPath(workspace, 'many', StatCache.inMemory({ racyWindowMs: 0 }));
        },
        () => store.restore(workspace, many, StatCache.inMemory({ racyWindowMs: 0 })),
      );
      results.push({
        name: `the runner's restore step, ${FILES} files of 64 KiB, ${link}: verified + stat cache`,
        value: after,
        unit: 'ms',
        command: `Store.restore(workspace, entry, statCache), files in ${base}`,
        note: `before (unverified restore, then hashPath reading every file again): ${before.toFixed(0)} ms in the same loop`,
      });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return results;
}
