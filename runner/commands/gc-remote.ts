// `runner gc --remote URL [--dry-run]`: cache/remote/gc.ts on a file:// or s3:// remote.
import { openBackend, RemoteError, remoteUrlProblem } from '../../cache/remote/backend.js';
import { collectRemote } from '../../cache/remote/gc.js';
import { formatBytes } from '../../cache/remote/transfer.js';
import type { Values } from './values.js';
import { fail } from '../spec/diagnostics.js';

export async function gcRemoteCommand(url: string, values: Values): Promise<number> {
  const problem = remoteUrlProblem(url);
  if (problem) fail(`--remote: ${problem}`);
  let backend;
  try {
    backend = await openBackend(url, { timeoutMs: 30_000, connections: 8, env: process.env });
    const dryRun = values['dry-run'] === true;
    const result = await collectRemote(backend, { dryRun });
    if (values['json']) {
      process.stdout.write(JSON.stringify({ remote: backend.display, dryRun, records: result.records, brokenRecords: result.brokenRecords, packIndexes: result.packIndexes, deadPackIndexes: result.deadPackIndexes, orphans: result.orphans.length, orphanBytes: result.orphanBytes }) + '\n');
    } else {
      const verb = dryRun ? 'would remove' : 'removed';
      const packs = result.packIndexes ? `, ${result.deadPackIndexes.length} of ${result.packIndexes} pack indexes (of no live record)` : '';
      process.stdout.write(`${backend.display}: ${verb} ${result.brokenRecords.length} of ${result.records} records (naming missing objects)${packs} and ${result.orphans.length} objects (${formatBytes(result.orphanBytes)}) no record names\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof RemoteError) fail(error.message);
    throw error;
  } finally {
    backend?.close();
  }
}
