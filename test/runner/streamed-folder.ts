// The folder both streamed-restore CLI tests (remote-pull-stream, remote-run-stream) push and restore: 700 files
// in two levels, each a different size; the stage logs each run to runs.log (helpers.ts `runs`).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { treeStats } from '../../cache/tree-stats.js';
import { runCliAsync, type FaultServer } from '../cache/remote-helpers.js';

export const FILES = 700;

export const PIPELINE = `stages:
  many:
    cmd: [node, -e, "const fs = require('fs'); fs.appendFileSync('runs.log', 'many\\\\n'); fs.mkdirSync('big/sub', { recursive: true }); for (let i = 0; i < ${FILES}; i++) fs.writeFileSync((i % 2 ? 'big/f' : 'big/sub/f') + i, 'file ' + i + ' ' + 'x'.repeat(i))"]
    outs: [big]
`;

/** Every path below `dir` whose name is a restore temp. */
export function restoreTemps(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((path) => /(^|\/)\.[^/]+\.restore-\d+-[0-9a-f]{8}$/.test(path));
}

/** Workspace b's `big` holds exactly a's files, byte for byte. */
export function sameFolder(a: string, b: string): void {
  for (let i = 0; i < FILES; i++) {
    const path = (i % 2 ? 'big/f' : 'big/sub/f') + i;
    assert.equal(readFileSync(join(b, path), 'utf8'), readFileSync(join(a, path), 'utf8'), path);
  }
  assert.equal((readdirSync(join(b, 'big'), { recursive: true }) as string[]).length, FILES + 1);
}

/**
 * The stat cache of workspace b remembers its restored `big` as a fresh walk sees it, and `status` calls the stage
 * fresh (reading no file). Returns the tree's record: [stat digest, content hash].
 */
export async function assertRemembered(b: string): Promise<[string, string]> {
  const root = realpathSync(join(b, 'big'));
  const trees = (JSON.parse(readFileSync(join(b, '.runner/stat-cache.json'), 'utf8')) as { trees: Record<string, [string, string]> }).trees;
  assert.equal(trees[root]?.[0], treeStats(root).statDigest, 'the tree record, from what the streamed restore wrote');
  const status = await runCliAsync(b, ['status', 'pipeline.yaml']);
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /many: fresh/);
  return trees[root]!;
}

/** The server's largest object: the folder's pack (its files' bytes end to end; the manifest has a line per file). */
export function packOf(server: FaultServer): string {
  const pack = [...server.objects.entries()].sort((x, y) => y[1].length - x[1].length)[0]![0];
  assert.match(pack, /^cas\//);
  return pack;
}
