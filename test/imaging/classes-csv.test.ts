// stages/imaging/classes-csv.ts and csv-table.ts: one reader of classes.csv for fix-masks, split and evaluate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readClasses } from '../../stages/imaging/classes-csv.js';
import { parseCsv } from '../../stages/imaging/csv-table.js';

test('quoted fields, a byte-order mark, CRLF, columns in any order and blank lines are read as CSV', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'classes-'));
  const file = join(dir, 'classes.csv');
  writeFileSync(file, '\uFEFFbackground,filename,foreground\r\n"black, dark",a.png,white\r\n\r\nwhite,"b.png",purple\r\n');
  assert.deepEqual([...(await readClasses(file))], [['a', 'whiteblack, dark'], ['b', 'purplewhite']]);
});

test('a missing cell, a short row or an open quote is an error naming file:line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'classes-'));
  const file = join(dir, 'c.csv');
  writeFileSync(file, 'filename,foreground,background\nx.png,,black\n');
  await assert.rejects(readClasses(file), /c\.csv:2: expected filename,foreground,background/);
  assert.throws(() => parseCsv('a,b\n1\n', 'f.csv', ['a']), /^StageError: f\.csv:2: 1 fields, the header has 2$/);
  assert.throws(() => parseCsv('a,b\n1,"2\n', 'f.csv', ['a']), /^StageError: f\.csv(:\d+)?: .*quote/i);
  assert.throws(() => parseCsv('\n\n', 'f.csv', ['a']), /f\.csv: empty file; expected a header line a/);
  await assert.rejects(readClasses(join(dir, 'absent.csv')), /absent\.csv: cannot read classes file/);
});
