// The watch daemon's set of inotify watches: one per directory below each watched root, kept in step with
// the tree as directories appear, move and go, and the translation of each inotify event into the path that
// changed (or into "start over").
//
// Why each rule keeps the daemon's "unchanged" true (daemon.ts issues tokens only while it
// handles a cookie event, i.e. after every earlier event of the one queue):
// - A new directory is watched *before* it is listed, and its subdirectories the same way, so anything
//   created in it after the listing has an event; anything before is older than the next token, and the
//   creation itself is logged under the parent, so a walk made under an older token is already invalid.
// - A directory moved away or deleted has its watches removed when its parent's event is handled; events
//   still queued for those watches are dropped. Each of them is for a write made before that moment, hence
//   before any token handed out afterwards; tokens handed out before are invalid anyway, since the move is
//   logged as a change of the moved path.
// - A root that is deleted, moved or unmounted, a queue overflow, and a watch that cannot be added are not
//   patched: the daemon starts over (new instance, every token unknown), or serves "unknown" (failure).
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { IN, WATCH_MASK, type InotifyAddon, type InotifyEvent } from './inotify-binding.js';

/** Never watched below the workspace: the runner's own files (the cookies among them), git's, installed packages. */
export const EXCLUDED_NAMES: ReadonlySet<string> = new Set(['.runner', '.git', 'node_modules']);

export type EventOutcome =
  | { kind: 'changed'; path: string }
  | { kind: 'reset'; reason: string }
  | { kind: 'cookie'; name: string }
  | { kind: 'ignored' };

export interface Root {
  path: string;
  /** The workspace root leaves EXCLUDED_NAMES unwatched; a dep root outside it is watched whole. */
  excludeNames: boolean;
  /** The sequence number when it was added: older tokens say nothing about it. */
  sinceSeq: number;
  /** Its identity when added: a root whose path now names another directory is a reset. */
  dev: number;
  ino: number;
  /** Why its tree is not watched whole (the watch limit, permissions): every answer below it is "unknown". */
  failure?: string;
}

const errnoName = (negative: number): string =>
  Object.entries(constants.errno).find(([, n]) => n === -negative)?.[0] ?? `errno ${-negative}`;

function maxUserWatches(): string {
  try {
    return readFileSync('/proc/sys/fs/inotify/max_user_watches', 'utf8').trim();
  } catch {
    return '?';
  }
}

export class WatchTree {
  private readonly pathOf = new Map<number, string>();
  private readonly wdOf = new Map<string, number>();
  readonly roots = new Map<string, Root>();
  /** Directories left unwatched (EXCLUDED_NAMES): a question about a tree holding one is "unknown". */
  readonly excluded = new Set<string>();
  private cookieWd = -1;
  /** Why the cookie folder could not be watched: no answer can be synced, every answer is "unknown". */
  failure: string | undefined;

  constructor(
    private readonly inotify: InotifyAddon,
    private readonly fd: number,
    readonly cookieDir: string,
    /** At most this many directory watches (the kernel's limit applies anyway). */
    private readonly maxWatches = Infinity,
  ) {}

  get watchCount(): number {
    return this.pathOf.size;
  }

  /** Watches the cookie folder alone (its file creations are the daemon's sync points). */
  watchCookies(): void {
    const wd = this.inotify.addWatch(this.fd, this.cookieDir, WATCH_MASK);
    if (wd < 0) this.fail(undefined, `cannot watch the cookie folder ${this.cookieDir}: ${errnoName(wd)}`);
    else this.cookieWd = wd;
  }

  /** Watches a root's whole tree; with `optional`, a root that cannot be watched whole is dropped again. */
  addRoot(path: string, excludeNames: boolean, seq: number, optional = false): string | undefined {
    const stat = lstatSync(path);
    const root: Root = { path, excludeNames, sinceSeq: seq, dev: stat.dev, ino: stat.ino };
    this.roots.set(path, root);
    const failure = this.addTree(path, excludeNames);
    if (failure === undefined) return undefined;
    // A root that does not fit (a workspace too large for the watch limit, a dep linked to /usr) gives its
    // watches back, so the other roots keep working; one asked about on demand is forgotten.
    this.removeTree(path);
    if (optional) this.roots.delete(path);
    else this.fail(root, failure);
    return failure;
  }

  /** The root whose tree holds `dir` (a real path), if any. */
  rootOf(dir: string): Root | undefined {
    let best: Root | undefined;
    for (const root of this.roots.values()) {
      if ((dir === root.path || dir.startsWith(root.path + '/')) && (!best || root.path.length > best.path.length)) best = root;
    }
    return best;
  }

  /** Whether the root's path still names the directory that is watched. */
  stillThere(root: Root): boolean {
    try {
      const stat = lstatSync(root.path);
      return stat.isDirectory() && stat.dev === root.dev && stat.ino === root.ino;
    } catch {
      return false;
    }
  }

  /** An unwatched directory at, above or below `dir`, if any. */
  unwatchedNear(dir: string): string | undefined {
    for (const path of this.excluded) if (related(path, dir)) return path;
    return undefined;
  }

  /** Records why a root (or, with none, the cookie folder) cannot be vouched for; said once in the log. */
  private fail(root: Root | undefined, reason: string): void {
    const holder: { failure?: string | undefined } = root ?? this;
    if (holder.failure !== undefined) return;
    holder.failure = reason;
    process.stderr.write(`watch daemon: ${reason}; answering "unknown" for ${root ? root.path : 'everything'} from now on\n`);
  }

  /** Watches `dir` and every directory below it: watch first, then list (see the header). Why it failed, if it did. */
  private addTree(dir: string, excludeNames: boolean): string | undefined {
    const stack = [dir];
    while (stack.length > 0) {
      const current = stack.pop()!;
      const wd = this.pathOf.size >= this.maxWatches ? -constants.errno.ENOSPC : this.inotify.addWatch(this.fd, current, WATCH_MASK);
      if (wd < 0) {
        // Gone or replaced by a file since it was listed: its parent's event says so.
        if (wd === -constants.errno.ENOENT || wd === -constants.errno.ENOTDIR) continue;
        return wd === -constants.errno.ENOSPC
          ? `inotify watch limit reached at ${current} (fs.inotify.max_user_watches = ${maxUserWatches()}; raise it with sysctl)`
          : `cannot watch ${current}: ${errnoName(wd)}`;
      }
      this.pathOf.set(wd, current);
      this.wdOf.set(current, wd);
      let entries;
      try {
        entries = readdirSync(current, { withFileTypes: true });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        return `cannot list ${current}: ${code ?? String(error)}`;
      }
      for (const entry of entries) {
        if (!entry.isDirectory()) continue; // a symlink is content (its target text), never followed
        const child = current + '/' + entry.name;
        if (excludeNames && EXCLUDED_NAMES.has(entry.name)) this.excluded.add(child);
        else stack.push(child);
      }
    }
    return undefined;
  }

  /** Stops watching `dir` and everything below it (moved away or deleted). */
  private removeTree(dir: string): void {
    for (const [path, wd] of this.wdOf) {
      if (path === dir || path.startsWith(dir + '/')) {
        this.inotify.rmWatch(this.fd, wd); // EINVAL when the kernel already dropped it: fine
        this.wdOf.delete(path);
        this.pathOf.delete(wd);
      }
    }
    for (const path of this.excluded) if (path === dir || path.startsWith(dir + '/')) this.excluded.delete(path);
  }

  /** Removes every watch (a reset); the roots are forgotten too, to be added again. */
  clear(): void {
    for (const wd of this.pathOf.keys()) this.inotify.rmWatch(this.fd, wd);
    if (this.cookieWd >= 0) this.inotify.rmWatch(this.fd, this.cookieWd);
    this.pathOf.clear();
    this.wdOf.clear();
    this.roots.clear();
    this.excluded.clear();
    this.cookieWd = -1;
    this.failure = undefined;
  }

  /** What one event means for the daemon's log. */
  handle(event: InotifyEvent): EventOutcome {
    if (event.mask & IN.Q_OVERFLOW) return { kind: 'reset', reason: 'the inotify queue overflowed (events were lost)' };
    if (event.wd === this.cookieWd) {
      if (event.mask & IN.CREATE) return { kind: 'cookie', name: event.name };
      if (event.mask & (IN.DELETE_SELF | IN.MOVE_SELF | IN.IGNORED | IN.UNMOUNT)) return { kind: 'reset', reason: 'the cookie folder was removed' };
      return { kind: 'ignored' };
    }
    const dir = this.pathOf.get(event.wd);
    if (dir === undefined) return { kind: 'ignored' }; // a watch already removed: see the header
    if (event.mask & (IN.IGNORED | IN.DELETE_SELF | IN.MOVE_SELF | IN.UNMOUNT)) {
      if (this.roots.has(dir) || event.mask & IN.UNMOUNT) return { kind: 'reset', reason: `watched root ${dir} was removed, moved or unmounted` };
      if (event.mask & IN.IGNORED) {
        this.pathOf.delete(event.wd);
        if (this.wdOf.get(dir) === event.wd) this.wdOf.delete(dir);
        return { kind: 'ignored' };
      }
      return { kind: 'changed', path: dir }; // its parent's event names it too
    }
    const path = event.name === '' ? dir : dir + '/' + event.name;
    if (event.mask & IN.ISDIR) {
      if (event.mask & (IN.MOVED_FROM | IN.DELETE)) this.removeTree(path);
      if (event.mask & (IN.CREATE | IN.MOVED_TO)) {
        const root = this.rootOf(path);
        if (root?.excludeNames && EXCLUDED_NAMES.has(event.name)) this.excluded.add(path);
        else {
          const failure = this.addTree(path, root?.excludeNames ?? false);
          if (failure !== undefined) this.fail(root, failure);
        }
      }
    }
    return { kind: 'changed', path };
  }
}

/** `a` is `b`, or lies above or below it. */
export function related(a: string, b: string): boolean {
  return a === b || a.startsWith(b + '/') || b.startsWith(a + '/');
}
