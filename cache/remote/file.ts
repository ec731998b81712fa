// A shared directory (NFS, a mounted disk) as a remote: the same layout as HTTP, `<root>/cas/<sha256>` and
// `<root>/ac/<sha256>`. Writes go to `<root>/tmp/` and are renamed into place, so a reader on another machine
// sees a whole object or none.
import { closeSync, createReadStream, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readRange } from '../read-range.js';
import { RemoteError, type ListedObject, type ObjectKey, type PutBody, type RemoteBackend } from './backend.js';

export class FileBackend implements RemoteBackend {
  readonly display: string;
  private readonly root: string;
  private readonly madeDirs = new Set<string>();

  constructor(url: URL) {
    this.root = fileURLToPath(url);
    this.display = url.toString().replace(/\/$/, '');
  }

  private path(key: ObjectKey): string {
    return join(this.root, key);
  }

  private ensureDir(dir: string): void {
    if (this.madeDirs.has(dir)) return;
    mkdirSync(dir, { recursive: true });
    this.madeDirs.add(dir);
  }

  async has(key: ObjectKey): Promise<boolean> {
    return existsSync(this.path(key));
  }

  async get(key: ObjectKey): Promise<{ body: import('node:stream').Readable; size: number } | undefined> {
    let size: number;
    try {
      size = statSync(this.path(key)).size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.error(error, `reading ${key}`);
    }
    return { body: createReadStream(this.path(key)), size };
  }

  async put(key: ObjectKey, body: PutBody): Promise<void> {
    const tmpDir = join(this.root, 'tmp');
    const tmp = join(tmpDir, `${process.pid}-${randomBytes(6).toString('hex')}`);
    const final = this.path(key);
    try {
      this.ensureDir(tmpDir);
      this.ensureDir(join(final, '..'));
      if ('bytes' in body) writeFileSync(tmp, body.bytes);
      else if (!body.offset && statSync(body.file).size === body.size) copyFileSync(body.file, tmp);
      else writeFileSync(tmp, readFileRange(body.file, body.offset ?? 0, body.size));
      renameSync(tmp, final);
    } catch (error) {
      rmSync(tmp, { force: true });
      throw this.error(error, `writing ${key}`);
    }
  }

  async *list(prefix: 'cas/' | 'ac/'): AsyncIterable<ListedObject> {
    const dir = join(this.root, prefix);
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const stat = statSync(join(dir, name), { throwIfNoEntry: false });
      if (stat?.isFile()) yield { key: `${prefix}${name}` as ObjectKey, size: stat.size, mtimeMs: stat.mtimeMs };
    }
  }

  async remove(key: ObjectKey): Promise<void> {
    rmSync(this.path(key), { force: true });
  }

  close(): void {}

  private error(error: unknown, what: string): RemoteError {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    // A full or read-only share doesn't heal within a retry; a flaky network mount might.
    return new RemoteError(`${this.display}: ${what}: ${code}`, code === 'EIO' || code === 'ESTALE' || code === 'EAGAIN');
  }
}

/** `size` bytes of a file from `offset` (an object inside a local pack). */
function readFileRange(file: string, offset: number, size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  const fd = openSync(file, 'r');
  try {
    if (readRange(fd, bytes, offset) < size) throw new Error(`${file} ends before byte ${offset + size}`);
  } finally {
    closeSync(fd);
  }
  return bytes;
}
