import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./fixtures/save-dir.ts', import.meta.url));

function countObjects(objectsDir: string): number {
  if (!existsSync(objectsDir)) return 0;
  return readdirSync(objectsDir).reduce((n, shard) => n + readdirSync(join(objectsDir, shard)).length, 0);
}

/** Every object's name is the sha256 of its bytes (a directory manifest's name is `<sha256>.dir`). */
function objectsMatchTheirNames(objectsDir: string): number {
  let count = 0;
  for (const shard of existsSync(objectsDir) ? readdirSync(objectsDir) : []) {
    for (const name of readdirSync(join(objectsDir, shard))) {
      const digest = createHash('sha256').update(readFileSync(join(objectsDir, shard, name))).digest('hex');
      assert.equal(name.replace(/\.dir$/, ''), digest, `object ${shard}/${name} is incomplete or wrong`);
      assert.equal(shard, digest.slice(0, 2));
      count++;
    }
  }
  return count;
}

test('kill -9 in the middle of Store.save leaves only complete objects named by their content', async () => {
  const root = mkdtempSync(join(tmpdir(), 'cache-crash-'));
  const ws = join(root, 'ws');
  mkdirSync(join(ws, 'big'), { recursive: true });
  // 48 files of 1 MiB, distinct content: each object is copied and fsync'd, so saving takes a while.
  for (let i = 0; i < 48; i++) writeFileSync(join(ws, 'big', `part-${i}`), Buffer.alloc(1 << 20, i));
  const cacheDir = join(root, 'cache');

  const proc = spawn(process.execPath, ['--import', 'tsx', child, cacheDir, ws, 'big'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve) => {
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('saving')) resolve();
    });
  });
  // Kill once a few objects are in: the save is then well under way, with more temp files coming.
  const started = Date.now();
  while (countObjects(join(cacheDir, 'objects')) < 8 && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 2));
  proc.kill('SIGKILL');
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, sig) => resolve(sig)));
  assert.equal(signal, 'SIGKILL', `the child finished before it was killed: ${out}`);
  const objects = objectsMatchTheirNames(join(cacheDir, 'objects'));
  assert.ok(objects >= 8 && objects < 49, `killed mid-save (${objects} of 49 objects)`);
});
