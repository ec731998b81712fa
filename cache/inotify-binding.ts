// Linux inotify for the watch daemon (runner/watch-daemon.ts), through a tiny N-API addon of ours that is
// compiled on first use with the system C compiler.
//
// Why not a package: the daemon's whole promise is "no event lost without saying so", and inotify says so
// only through IN_Q_OVERFLOW. Node's fs.watch (libuv) drops that event without telling its caller;
// @parcel/watcher 2.x reads it and `continue`s (src/linux/InotifyBackend.cc), and also misses files created in
// a new directory before its watch is added. So the addon exposes the three syscalls and nothing else, and
// everything that needs judgement (overflow, new and moved directories, watch limits) is TypeScript in the
// daemon, where the tests can see it.
//
// How it is read: the inotify descriptor is blocking, and the daemon reads it with fs.read, which parks one
// libuv pool thread in read(2) until events arrive. It is never closed (the daemon recovers from an
// overflow by removing and re-adding its watches on the same descriptor), so no read is ever left blocked on
// a descriptor that is gone.
//
// Build: `cc -O2 -shared -fPIC -I<node>/include/node`; the result is kept in ~/.cache/runner (or
// RUNNER_NATIVE_CACHE) under the hash of the source, Node's N-API version and the platform, and written by temp
// + rename so two daemons starting at once never load half a file.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

const ADDON_SOURCE = String.raw`
#include <node_api.h>
#include <sys/inotify.h>
#include <errno.h>
#include <stdlib.h>

/* Every function returns a number: the result (>= 0) or -errno. */
static napi_value number(napi_env env, int value) {
  napi_value result;
  napi_create_int32(env, value, &result);
  return result;
}

static int int_arg(napi_env env, napi_value value) {
  int32_t out = -1;
  napi_get_value_int32(env, value, &out);
  return out;
}

static napi_value init(napi_env env, napi_callback_info info) {
  int fd = inotify_init1(IN_CLOEXEC);
  return number(env, fd < 0 ? -errno : fd);
}

/* addWatch(fd, path, mask) -> wd or -errno */
static napi_value add_watch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 3) return number(env, -EINVAL);
  size_t length = 0;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &length) != napi_ok) return number(env, -EINVAL);
  char *path = malloc(length + 1);
  if (!path) return number(env, -ENOMEM);
  napi_get_value_string_utf8(env, argv[1], path, length + 1, &length);
  uint32_t mask = 0;
  napi_get_value_uint32(env, argv[2], &mask);
  int wd = inotify_add_watch(int_arg(env, argv[0]), path, mask);
  int err = errno;
  free(path);
  return number(env, wd < 0 ? -err : wd);
}

/* rmWatch(fd, wd) -> 0 or -errno */
static napi_value rm_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) return number(env, -EINVAL);
  int result = inotify_rm_watch(int_arg(env, argv[0]), int_arg(env, argv[1]));
  return number(env, result < 0 ? -errno : 0);
}

NAPI_MODULE_INIT() {
  napi_property_descriptor functions[] = {
    {"init", NULL, init, NULL, NULL, NULL, napi_default, NULL},
    {"addWatch", NULL, add_watch, NULL, NULL, NULL, napi_default, NULL},
    {"rmWatch", NULL, rm_watch, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 3, functions);
  return exports;
}
`;

/** The addon's functions; each returns its result or -errno. */
export interface InotifyAddon {
  init(): number;
  addWatch(fd: number, path: string, mask: number): number;
  rmWatch(fd: number, wd: number): number;
}

/** inotify(7) event bits (linux/inotify.h). */
export const IN = {
  MODIFY: 0x2,
  ATTRIB: 0x4,
  MOVED_FROM: 0x40,
  MOVED_TO: 0x80,
  CREATE: 0x100,
  DELETE: 0x200,
  DELETE_SELF: 0x400,
  MOVE_SELF: 0x800,
  UNMOUNT: 0x2000,
  Q_OVERFLOW: 0x4000,
  IGNORED: 0x8000,
  ONLYDIR: 0x1000000,
  DONT_FOLLOW: 0x2000000,
  EXCL_UNLINK: 0x4000000,
  ISDIR: 0x40000000,
} as const;

/** What a watched directory reports: every change of a child's content, metadata or name, and its own end. */
export const WATCH_MASK = IN.MODIFY | IN.ATTRIB | IN.MOVED_FROM | IN.MOVED_TO | IN.CREATE | IN.DELETE | IN.DELETE_SELF |
  IN.MOVE_SELF | IN.ONLYDIR | IN.DONT_FOLLOW | IN.EXCL_UNLINK;

export interface InotifyEvent {
  wd: number;
  mask: number;
  cookie: number;
  /** The child's name, '' for an event about the watched directory itself. */
  name: string;
}

/** Splits what one read(2) of an inotify descriptor returned: struct inotify_event {i32 wd; u32 mask, cookie, len; char name[len]}. */
export function parseEvents(buffer: Buffer, bytes: number): InotifyEvent[] {
  const events: InotifyEvent[] = [];
  for (let at = 0; at + 16 <= bytes; ) {
    const wd = buffer.readInt32LE(at);
    const mask = buffer.readUInt32LE(at + 4);
    const cookie = buffer.readUInt32LE(at + 8);
    const len = buffer.readUInt32LE(at + 12);
    const raw = buffer.subarray(at + 16, at + 16 + len);
    const end = raw.indexOf(0);
    events.push({ wd, mask, cookie, name: raw.subarray(0, end < 0 ? raw.length : end).toString('utf8') });
    at += 16 + len;
  }
  return events;
}

/** Where Node's headers are: <prefix>/include/node beside <prefix>/bin/node. */
function nodeIncludeDir(): string | undefined {
  const candidates = [join(dirname(dirname(process.execPath)), 'include', 'node'), '/usr/include/node', '/usr/local/include/node'];
  return candidates.find((dir) => existsSync(join(dir, 'node_api.h')));
}

export class InotifyUnavailableError extends Error {
  override readonly name = 'InotifyUnavailableError';
}

let loaded: InotifyAddon | undefined;

/** The addon, compiled on first use; throws InotifyUnavailableError saying what is missing. */
export function loadInotify(): InotifyAddon {
  if (loaded) return loaded;
  if (process.platform !== 'linux') throw new InotifyUnavailableError(`the watch daemon needs Linux inotify (this is ${process.platform})`);
  const key = createHash('sha256').update(ADDON_SOURCE).update(`${process.versions.napi}/${process.platform}-${process.arch}`).digest('hex').slice(0, 16);
  const dir = process.env['RUNNER_NATIVE_CACHE'] ?? join(homedir(), '.cache', 'runner');
  const addon = join(dir, `inotify-${key}.node`);
  if (!existsSync(addon)) {
    const include = nodeIncludeDir();
    if (!include) throw new InotifyUnavailableError(`Node's headers (node_api.h) were not found beside ${process.execPath}: install the nodejs headers (e.g. Debian's libnode-dev)`);
    mkdirSync(dir, { recursive: true });
    const source = join(dir, `inotify-${key}.${process.pid}.c`);
    const temp = `${addon}.tmp-${process.pid}`;
    writeFileSync(source, ADDON_SOURCE);
    try {
      const compiler = process.env['CC'] ?? 'cc';
      const built = spawnSync(compiler, ['-O2', '-shared', '-fPIC', `-I${include}`, source, '-o', temp], { encoding: 'utf8' });
      if (built.error || built.status !== 0) {
        const why = built.error?.message ?? (built.stderr.trim().split('\n').slice(-3).join(' / ') || `exit ${built.status ?? built.signal}`);
        throw new InotifyUnavailableError(`could not compile the inotify addon with ${compiler} (set CC to another C compiler): ${why}`);
      }
      renameSync(temp, addon);
    } finally {
      rmSync(source, { force: true });
      rmSync(temp, { force: true });
    }
  }
  loaded = createRequire(import.meta.url)(addon) as InotifyAddon;
  return loaded;
}
