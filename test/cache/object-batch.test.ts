// ObjectBatch: downloaded objects get their content names only after their bytes were flushed, in one go.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { flushData, ObjectBatch, type FlushData } from '../../cache/remote/object-batch.js';

function folders(): { tmp: string; objects: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'object-batch-'));
  const tmp = join(root, 'tmp');
  mkdirSync(tmp);
  return { tmp, objects: join(root, 'objects'), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

test('staged objects have no name until the batch is committed, and are flushed before any rename', async () => {
  const f = folders();
  try {
    const flushed: string[][] = [];
    const flush: FlushData = async (dir, files) => {
      assert.equal(dir, f.tmp);
      // At flush time nothing of the batch has its name yet.
      for (let i = 0; i < 3; i++) assert.equal(existsSync(join(f.objects, 'ab', `obj${i}`)), false);
      flushed.push([...files]);
    };
    const batch = new ObjectBatch(f.tmp, (final, error) => assert.fail(`${final}: ${error.message}`), flush);
    const stored: Promise<boolean>[] = [];
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(f.tmp, `t${i}`), `bytes ${i}`);
      stored.push(batch.stage(join(f.tmp, `t${i}`), join(f.objects, 'ab', `obj${i}`)));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(existsSync(join(f.objects, 'ab')), false, 'nothing is renamed before commit');
    await batch.commit();
    assert.deepEqual(await Promise.all(stored), [true, true, true]);
    assert.deepEqual(flushed, [[0, 1, 2].map((i) => join(f.tmp, `t${i}`))]);
    assert.equal(readFileSync(join(f.objects, 'ab', 'obj2'), 'utf8'), 'bytes 2');
    assert.deepEqual(readdirSync(f.tmp), []);
  } finally {
    f.cleanup();
  }
});

test('a failed flush names no object: the temps are removed and each object is reported', async () => {
  const f = folders();
  try {
    const errors: string[] = [];
    const batch = new ObjectBatch(f.tmp, (final) => errors.push(final), async () => {
      throw new Error('EIO');
    });
    writeFileSync(join(f.tmp, 't'), 'x');
    const stored = batch.stage(join(f.tmp, 't'), join(f.objects, 'ab', 'obj'));
    await batch.commit();
    assert.equal(await stored, false);
    assert.deepEqual(errors, [join(f.objects, 'ab', 'obj')]);
    assert.equal(existsSync(join(f.objects, 'ab', 'obj')), false);
    assert.deepEqual(readdirSync(f.tmp), []);
  } finally {
    f.cleanup();
  }
});

test('a batch commits by itself once it holds commitEvery objects', async () => {
  const f = folders();
  try {
    let flushes = 0;
    const batch = new ObjectBatch(f.tmp, () => {}, async () => void flushes++, 2);
    const stored: Promise<boolean>[] = [];
    for (let i = 0; i < 4; i++) {
      writeFileSync(join(f.tmp, `t${i}`), `${i}`);
      stored.push(batch.stage(join(f.tmp, `t${i}`), join(f.objects, 'ab', `obj${i}`)));
    }
    assert.deepEqual(await Promise.all(stored), [true, true, true, true]);
    assert.equal(flushes, 2);
  } finally {
    f.cleanup();
  }
});

test('flushData flushes real files (syncfs, or each file where there is none)', async () => {
  const f = folders();
  try {
    writeFileSync(join(f.tmp, 'a'), 'a');
    await flushData(f.tmp, [join(f.tmp, 'a')]);
  } finally {
    f.cleanup();
  }
});

test('a process killed while its batch is staged leaves temps only, no object under its name', async () => {
  const f = folders();
  try {
    const module = fileURLToPath(new URL('../../cache/remote/object-batch.ts', import.meta.url));
    // The child stages objects whose flush never ends, says so, and is killed there.
    const script = `
      import { writeFileSync } from 'node:fs';
      const { ObjectBatch } = await import(${JSON.stringify(module)});
      const batch = new ObjectBatch(${JSON.stringify(f.tmp)}, () => {}, () => new Promise(() => {}));
      for (let i = 0; i < 5; i++) {
        writeFileSync(${JSON.stringify(f.tmp)} + '/t' + i, 'bytes ' + i);
        void batch.stage(${JSON.stringify(f.tmp)} + '/t' + i, ${JSON.stringify(f.objects)} + '/ab/obj' + i);
      }
      void batch.commit();
      setTimeout(() => process.stdout.write('flushing\\n'), 50);
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(existsSync(f.objects), false, 'no object was named');
    assert.equal(readdirSync(f.tmp).length, 5, 'the temps stay for gc');
  } finally {
    f.cleanup();
  }
});
