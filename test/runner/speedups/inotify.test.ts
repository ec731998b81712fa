// runner/speedups/inotify.c on its own: compiled by loadInotify into a temp cache, each of its three
// functions returns its result or -errno, and a real event read from the descriptor parses as what happened.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { closeSync, mkdtempSync, readdirSync, readSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IN, loadInotify, parseEvents, type InotifyAddon } from '../../../runner/watch/inotify-binding.js';

const cache = mkdtempSync(join(tmpdir(), 'inotify-cache-'));
process.env['RUNNER_NATIVE_CACHE'] = cache;
let addon: InotifyAddon | undefined;
let skip: string | false = false;
try {
  addon = loadInotify();
} catch (error) {
  skip = `the addon cannot be built here: ${(error as Error).message}`;
}

test('the addon is built into the native cache under a hashed name, and nothing else is left there', { skip }, () => {
  assert.deepEqual(readdirSync(cache).filter((name) => !/^inotify-[0-9a-f]{16}\.node$/.test(name)), []);
  assert.equal(readdirSync(cache).length, 1);
});

test('init, addWatch and rmWatch return their results, or -errno', { skip }, () => {
  const inotify = addon!;
  const dir = mkdtempSync(join(tmpdir(), 'inotify-'));
  const fd = inotify.init();
  assert.ok(fd >= 0, `a descriptor, not ${fd}`);
  try {
    assert.equal(inotify.addWatch(fd, join(dir, 'missing'), IN.CREATE), -constants.errno.ENOENT);
    assert.equal(inotify.addWatch(-1, dir, IN.CREATE), -constants.errno.EBADF);
    const wd = inotify.addWatch(fd, dir, IN.CREATE | IN.ONLYDIR);
    assert.ok(wd >= 1, `a watch, not ${wd}`);
    writeFileSync(join(dir, 'new.txt'), 'x');
    const buffer = Buffer.alloc(4096);
    const events = parseEvents(buffer, readSync(fd, buffer)); // the event is queued: this read does not block
    assert.deepEqual(events.map((e) => ({ wd: e.wd, create: (e.mask & IN.CREATE) !== 0, name: e.name })), [{ wd, create: true, name: 'new.txt' }]);
    assert.equal(inotify.rmWatch(fd, wd), 0);
    assert.equal(inotify.rmWatch(fd, wd), -constants.errno.EINVAL, 'a watch removed twice');
  } finally {
    closeSync(fd);
  }
});
