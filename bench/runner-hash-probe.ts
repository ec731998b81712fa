// Child process of runner-hash.ts: one fresh process hashing a directory dep through a stat cache file, as a
// `runner status` would. Prints {loadMs, hashMs, nfiles, hash} as JSON; start-up is not counted.
import { StatCache } from '../cache/stat-cache.js';
import { hashPath } from '../cache/hash.js';

const [statCacheFile, workspace, relPath] = process.argv.slice(2);
if (!statCacheFile || !workspace || !relPath) throw new Error('usage: runner-hash-probe.ts <statCacheFile> <workspace> <relPath>');
const t0 = performance.now();
const statCache = StatCache.load(statCacheFile);
const t1 = performance.now();
const result = await hashPath(workspace, relPath, statCache);
const t2 = performance.now();
statCache.save();
process.stdout.write(JSON.stringify({ loadMs: t1 - t0, hashMs: t2 - t1, nfiles: result.nfiles, hash: result.hash }) + '\n');
