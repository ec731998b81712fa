// Linux inotify for the watch daemon (daemon.ts), through a tiny N-API addon of ours
// (runner/speedups/inotify.c) that is compiled on first use with the system C compiler.
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
// Build and cache: runner/native-addon.ts.
import { fileURLToPath } from 'node:url';
import { loadNativeAddon, NativeAddonUnavailableError } from '../native-addon.js';

/** The addon's source, a real file beside the other optional speed-ups (copied into dist/ by the build). */
const ADDON_FILE = fileURLToPath(new URL('../speedups/inotify.c', import.meta.url));

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

/** The watch daemon cannot have inotify here; the message says what is missing. */
export const InotifyUnavailableError = NativeAddonUnavailableError;

let loaded: InotifyAddon | undefined;

/** The addon, compiled on first use; throws InotifyUnavailableError saying what is missing. */
export function loadInotify(): InotifyAddon {
  if (loaded) return loaded;
  if (process.platform !== 'linux') throw new InotifyUnavailableError(`the watch daemon needs Linux inotify (this is ${process.platform})`);
  loaded = loadNativeAddon<InotifyAddon>({ name: 'inotify', sourceFile: ADDON_FILE });
  return loaded;
}
