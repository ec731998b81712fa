// Tampered cache objects are never restored as good: the restore hashes what it hands to the workspace, a
// damaged object is removed and named in one warning line, and the stage runs instead. Real CLI runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeWorkspace, runJson, runs } from './helpers.js';

const LINKS = ['reflink-or-copy', 'copy', 'hardlink'] as const;

function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

function objectOf(dir: string, content: string, suffix = ''): string {
  const hash = sha256(content);
  return join(dir, '.runner/cache/objects', hash.slice(0, 2), hash + suffix);
}

/** Writes over a read-only object, as root (or a hardlinked out edited in place) can. */
function overwrite(file: string, bytes: string): void {
  chmodSync(file, 0o644);
  writeFileSync(file, bytes);
}

function assertNoStack(stderr: string): void {
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
}

/** The one warning line of a restore that failed, naming the damaged object and what it was for. */
function assertDamageWarning(stderr: string, of: string): void {
  const lines = stderr.split('\n').filter((line) => line.startsWith('warning:'));
  assert.equal(lines.length, 1, stderr);
  assert.match(lines[0]!, new RegExp(`^warning: stage \\S+: not restored from the cache: object \\S+ of ${of} is damaged \\(.+\\); removed it from the cache; running it instead$`));
  assertNoStack(stderr);
}

const FILE_PIPELINE = (link: string): string => `cache: {link: ${link}}
stages:
  gen:
    cmd: sh stage.sh gen f.txt
    outs: [f.txt]
`;

for (const link of LINKS) {
  for (const [damage, bytes] of [['with other bytes of the same size', 'GEN F.TXT\n'], ['truncated', '']] as const) {
    test(`an object ${damage} is removed and the stage runs instead of restoring it (${link})`, () => {
      const dir = makeWorkspace({ 'pipeline.yaml': FILE_PIPELINE(link) });
      assert.equal(runJson(dir, ['run', 'pipeline.yaml']).status, 0);
      const good = readFileSync(join(dir, 'f.txt'), 'utf8');
      const object = objectOf(dir, good);
      if (bytes === '') {
        chmodSync(object, 0o644);
        truncateSync(object, 3);
      } else {
        overwrite(object, bytes);
      }
      rmSync(join(dir, 'f.txt'));
      const again = runJson(dir, ['run', 'pipeline.yaml']);
      assert.equal(again.status, 0, again.stderr);
      assert.equal(again.summary.stages['gen']!.status, 'ran');
      assertDamageWarning(again.stderr, 'f\\.txt');
      assert.equal(readFileSync(join(dir, 'f.txt'), 'utf8'), good);
      assert.equal(sha256(readFileSync(object)), sha256(good), 'the store holds the right bytes again');
      assert.deepEqual(runs(dir), ['gen', 'gen']);
    });
  }
}

test('a damaged file inside a directory out is found, and the whole directory is rebuilt by running', () => {
  const dir = makeWorkspace({
    'pipeline.yaml': `stages:\n  gen:\n    cmd: sh stage.sh gen d/\n    outs: [d]\n`,
  });
  assert.equal(runJson(dir, ['run', 'pipeline.yaml']).status, 0);
  overwrite(objectOf(dir, 'gen\n'), 'neg\n');
  rmSync(join(dir, 'd'), { recursive: true });
  const again = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(again.summary.stages['gen']!.status, 'ran');
  assertDamageWarning(again.stderr, 'd/part\\.txt');
  assert.equal(readFileSync(join(dir, 'd/part.txt'), 'utf8'), 'gen\n');
  assert.deepEqual(readdirSync(dir).filter((name) => name.includes('.restore-')), [], 'no temp left beside the out');
});

for (const [damage, text] of [
  ['cut down', '[]'],
  ['garbage', 'garbage{'],
  ['a JSON array of nonsense', '[1,2,3]'],
] as const) {
  test(`a directory's manifest that is ${damage} is removed with one warning, and the stage runs`, () => {
    const dir = makeWorkspace({
      'pipeline.yaml': `stages:\n  gen:\n    cmd: sh stage.sh gen d/\n    outs: [d]\n`,
    });
    assert.equal(runJson(dir, ['run', 'pipeline.yaml']).status, 0);
    const hash = sha256(JSON.stringify([['part.txt', sha256('gen\n'), 4]]));
    const file = join(dir, '.runner/cache/objects', hash.slice(0, 2), hash + '.dir');
    assert.ok(existsSync(file), 'the manifest is where the store keeps it');
    overwrite(file, text);
    rmSync(join(dir, 'd'), { recursive: true });
    const again = runJson(dir, ['run', 'pipeline.yaml']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.summary.stages['gen']!.status, 'ran');
    const warnings = again.stderr.split('\n').filter((line) => line.startsWith('warning:'));
    assert.equal(warnings.length, 1, again.stderr);
    assert.match(warnings[0]!, /^warning: the manifest \S+\.dir of d is damaged \(.+\); removed it from the cache$/);
    assertNoStack(again.stderr);
    assert.equal(readFileSync(join(dir, 'd/part.txt'), 'utf8'), 'gen\n');
  });
}

const PARAM_PIPELINE = (link: string): string => `cache: {link: ${link}}
params:
  p: {v: A}
stages:
  gen:
    cmd: sh stage.sh gen-\${p.v} f.txt
    params: [p.v]
    outs: [f.txt]
`;

for (const link of LINKS) {
  test(`A -> B -> A: a damaged object of A is not restored; A runs again (${link})`, () => {
    const dir = makeWorkspace({ 'pipeline.yaml': PARAM_PIPELINE(link) });
    assert.equal(runJson(dir, ['run', 'pipeline.yaml']).status, 0);
    const a = readFileSync(join(dir, 'f.txt'), 'utf8');
    assert.equal(runJson(dir, ['run', 'pipeline.yaml', '--set', 'p.v=B']).status, 0);
    overwrite(objectOf(dir, a), 'gen-X f.txt\n');
    const back = runJson(dir, ['run', 'pipeline.yaml']);
    assert.equal(back.summary.stages['gen']!.status, 'ran');
    assertDamageWarning(back.stderr, 'f\\.txt');
    assert.equal(readFileSync(join(dir, 'f.txt'), 'utf8'), a);
    assert.deepEqual(runs(dir), ['gen-A', 'gen-B', 'gen-A']);
  });
}

test('link: hardlink — an out restored as a link and edited in place damages its object; the next restore finds it', () => {
  const dir = makeWorkspace({ 'pipeline.yaml': PARAM_PIPELINE('hardlink') });
  assert.equal(runJson(dir, ['run', 'pipeline.yaml']).status, 0);
  const a = readFileSync(join(dir, 'f.txt'), 'utf8');
  assert.equal(runJson(dir, ['run', 'pipeline.yaml', '--set', 'p.v=B']).status, 0);
  const restored = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(restored.summary.stages['gen']!.status, 'restored');
  // The user edits the restored out in place: through the shared inode, the object changes too.
  chmodSync(join(dir, 'f.txt'), 0o644);
  writeFileSync(join(dir, 'f.txt'), 'edited', { flag: 'r+' });
  assert.notEqual(sha256(readFileSync(objectOf(dir, a))), sha256(a), 'the object was edited through its link');
  assert.equal(runJson(dir, ['run', 'pipeline.yaml', '--set', 'p.v=B']).summary.stages['gen']!.status, 'restored');
  const back = runJson(dir, ['run', 'pipeline.yaml']);
  assert.equal(back.summary.stages['gen']!.status, 'ran');
  assertDamageWarning(back.stderr, 'f\\.txt');
  assert.equal(readFileSync(join(dir, 'f.txt'), 'utf8'), a);
});
