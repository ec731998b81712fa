// Where the benchmarks find the real DSB2018 data: DSB2018_DATA, else the shared folder beside the repository
// that the real-data tests read too (../shared/data/dsb2018). A benchmark that needs it skips where it is absent.
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const dsb2018Data = resolve(process.env['DSB2018_DATA'] ?? fileURLToPath(new URL('../../shared/data/dsb2018/', import.meta.url)));
