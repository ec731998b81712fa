// Which files a process tree opened for reading and which it wrote, taken with Debian's `strace -f`: the
// undeclared-read check Bazel's sandbox enforces, for stages in any language. Only successful calls count.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';

export interface FileTrace {
  exitCode: number | null;
  /** Workspace-relative paths opened read-only, or executed. */
  reads: Set<string>;
  /** Workspace-relative paths created, opened for writing, or renamed into place. */
  writes: Set<string>;
}

export function straceAvailable(): boolean {
  return spawnSync('strace', ['-V'], { stdio: 'ignore' }).status === 0;
}

const CALLS = ['open', 'openat', 'openat2', 'creat', 'execve', 'rename', 'renameat', 'renameat2', 'link', 'linkat', 'symlink', 'symlinkat'];

/** `123 openat(AT_FDCWD, "a/b", O_RDONLY|O_CLOEXEC) = 3` -> call, its quoted path arguments, flags. */
const LINE = /^(?:\[pid\s+)?\d+\]?\s+(\w+)\((.*)\)\s+=\s+\d+/;
const QUOTED = /"((?:[^"\\]|\\.)*)"/g;

function unescape(text: string): string {
  return text.replace(/\\(x[0-9a-f]{2}|[0-7]{1,3}|.)/g, (_, e: string) =>
    e[0] === 'x' ? String.fromCharCode(parseInt(e.slice(1), 16)) : /^[0-7]/.test(e) ? String.fromCharCode(parseInt(e, 8)) : e === 'n' ? '\n' : e === 't' ? '\t' : e);
}

/** Reads and writes inside `workspace` from strace's output (paths relative to the stage's cwd, the workspace). */
export function parseTrace(text: string, workspace: string): Omit<FileTrace, 'exitCode'> {
  const reads = new Set<string>();
  const writes = new Set<string>();
  const inside = (path: string): string | undefined => {
    const abs = isAbsolute(path) ? path : resolve(workspace, path);
    const rel = relative(workspace, abs);
    return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? undefined : rel.split(sep).join('/');
  };
  for (const line of text.split('\n')) {
    const match = LINE.exec(line);
    if (!match) continue;
    const [, call, args] = match as unknown as [string, string, string];
    const paths = [...args.matchAll(QUOTED)].map((m) => unescape(m[1]!));
    if (call === 'execve') {
      const path = paths[0] !== undefined ? inside(paths[0]) : undefined;
      if (path) reads.add(path);
    } else if (call.startsWith('open') || call === 'creat') {
      if (args.includes('O_DIRECTORY')) continue;
      const path = paths[0] !== undefined ? inside(paths[0]) : undefined;
      if (!path) continue;
      if (call === 'creat' || /O_WRONLY|O_RDWR|O_CREAT|O_TRUNC/.test(args)) writes.add(path);
      else reads.add(path);
    } else {
      // rename/link/symlink: the last path is what appears in the tree.
      const target = paths.length ? inside(paths[paths.length - 1]!) : undefined;
      if (target) writes.add(target);
    }
  }
  return { reads, writes };
}

/** Runs argv in `cwd` under `strace -f`, its output passed through, and returns what it read and wrote. */
export async function traceFiles(argv: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; traceFile: string }): Promise<FileTrace> {
  const args = ['-f', '-qq', '-z', '-s', '4096', '-e', `trace=${CALLS.join(',')}`, '-o', options.traceFile, '--', ...argv];
  const exitCode = await new Promise<number | null>((done, failed) => {
    const child = spawn('strace', args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', failed);
    child.on('close', (code) => done(code));
  });
  return { exitCode, ...parseTrace(readFileSync(options.traceFile, 'utf8'), options.cwd) };
}
