// The folder both streamed-restore CLI tests (remote-pull-stream, remote-run-stream) push and restore: 700 files
// in two levels, each a different size; the stage logs each run to runs.log (helpers.ts `runs`).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

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
