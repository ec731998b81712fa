// One remote store, whatever the scheme: objects named by Bazel's remote-cache layout, `cas/<sha256>` (file
// bytes, directory manifests, symlink targets) and `ac/<sha256 of the stage key>` (the run record). A backend
// only moves bytes; checking them (hashes, shapes, paths) is transfer.ts's job, so every scheme gets the same
// checks. http.ts, file.ts and s3.ts implement it; openBackend picks one by the URL's scheme.
import type { Readable } from 'node:stream';

export type ObjectKey = `cas/${string}` | `ac/${string}`;

/** What a PUT sends: bytes in memory (records, manifests) or a file of the local store, by path. */
/** What a PUT sends: bytes in memory, or `size` bytes of a file from `offset` (0: its start). */
export type PutBody = { bytes: Buffer } | { file: string; offset?: number; size: number };

/** One object as a listing shows it. */
export interface ListedObject {
  key: ObjectKey;
  size: number;
  mtimeMs: number;
}

export interface RemoteBackend {
  /** The URL without credentials: the only form of it that may appear in a message. */
  readonly display: string;
  has(key: ObjectKey): Promise<boolean>;
  /** The object's bytes as a stream, undefined when the remote does not have it. */
  get(key: ObjectKey): Promise<{ body: Readable; size?: number } | undefined>;
  /** `sha256` is the body's digest (S3 signs it; others may ignore it). */
  put(key: ObjectKey, body: PutBody, sha256: string): Promise<void>;
  /** Listing and deleting, for `runner gc --remote`; HTTP caches evict on the server's side instead. */
  list?(prefix: 'cas/' | 'ac/'): AsyncIterable<ListedObject>;
  remove?(key: ObjectKey): Promise<void>;
  close(): void;
}

/**
 * A failed remote operation. `transient`: worth retrying (timeouts, resets, 5xx, truncated bodies); a 403
 * or a malformed URL is not. Messages never hold credentials: they are built from `display` URLs.
 */
export class RemoteError extends Error {
  override readonly name = 'RemoteError';
  constructor(message: string, readonly transient: boolean) {
    super(message);
  }
}

export interface BackendOptions {
  /** Milliseconds a request may go without any byte moving before it is abandoned. */
  timeoutMs: number;
  /** Requests in flight at most (and so keep-alive connections kept open). */
  connections: number;
  env: NodeJS.ProcessEnv;
}

export const SCHEMES = ['http:', 'https:', 'file:', 's3:'] as const;

/** Why a remote URL can't be used, or undefined when it can (checked before a run starts). */
export function remoteUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `"${redactUrl(url)}" is not a URL; expected http(s)://host/path, file:///path or s3://bucket/prefix`;
  }
  if (!(SCHEMES as readonly string[]).includes(parsed.protocol)) {
    return `unsupported URL scheme "${parsed.protocol}" in "${redactUrl(url)}"; expected http(s)://, file:/// or s3://`;
  }
  if (parsed.protocol === 's3:' && !parsed.hostname) return `"${redactUrl(url)}" names no bucket; expected s3://bucket/prefix`;
  if (parsed.protocol === 'file:' && parsed.hostname) return `"${redactUrl(url)}" names a host; a shared directory is file:///absolute/path`;
  return undefined;
}

/** The URL with any user:password removed (also for strings that don't parse as URLs). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}

export async function openBackend(url: string, options: BackendOptions): Promise<RemoteBackend> {
  const problem = remoteUrlProblem(url);
  if (problem) throw new RemoteError(problem, false);
  const parsed = new URL(url);
  if (parsed.protocol === 'file:') return new (await import('./file.js')).FileBackend(parsed);
  if (parsed.protocol === 's3:') return new (await import('./s3.js')).S3Backend(parsed, options);
  return new (await import('./http.js')).HttpBackend(parsed, options);
}
