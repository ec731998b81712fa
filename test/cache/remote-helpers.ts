// Fixtures for the remote-cache tests: an in-process HTTP cache with fault injection, a real nginx started
// from docs/remote-cache.nginx.conf, and the CLI run asynchronously (spawnSync would block the in-process
// server's event loop).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpBackend } from '../../cache/remote/http.js';
import { RemoteTransfer, type TransferOptions } from '../../cache/remote/transfer.js';
import type { Store } from '../../cache/store.js';

const cli = fileURLToPath(new URL('../../runner/cli.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');
const nginxConf = fileURLToPath(new URL('../../docs/remote-cache.nginx.conf', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCliAsync(cwd: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', tsx, cli, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

export function spawnCliProcess(cwd: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', tsx, cli, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * What a fault does to one request: answer 500, never answer (slow), cut the body short, send half the body
 * and then nothing (stall), change its bytes, reset.
 */
export type Fault = 'status500' | 'slow' | 'truncate' | 'stall' | 'alter' | 'reset';

/** An HTTP cache in memory, Bazel layout, that can misbehave on request. */
export class FaultServer {
  readonly objects = new Map<string, Buffer>();
  readonly log: { method: string; path: string; auth?: string }[] = [];
  /** Decides a request's fault (undefined: serve it properly). */
  fault: (req: IncomingMessage, n: number) => Fault | undefined = () => undefined;
  private server: Server | undefined;
  url = '';

  async start(): Promise<string> {
    this.server = createServer((req, res) => this.handle(req, res));
    // Keep-alive connections would outlive the test otherwise.
    this.server.keepAliveTimeout = 500;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
    return this.url;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  count(method: string): number {
    return this.log.filter((r) => r.method === method).length;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').replace(/^\/+/, '');
    const entry: { method: string; path: string; auth?: string } = { method: req.method ?? '', path };
    if (req.headers.authorization) entry.auth = req.headers.authorization;
    this.log.push(entry);
    const fault = this.fault(req, this.log.length);
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault === 'status500') {
      req.resume();
      res.writeHead(500).end('boom');
      return;
    }
    if (fault === 'slow') {
      // Never answers; the client's timeout has to give up.
      req.resume();
      return;
    }
    if (req.method === 'PUT') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.objects.set(path, Buffer.concat(chunks));
        res.writeHead(201).end();
      });
      return;
    }
    const body = this.objects.get(path);
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-length': body.length }).end();
      return;
    }
    if (fault === 'truncate') {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, Math.floor(body.length / 2)));
      setTimeout(() => res.socket?.destroy(), 10);
      return;
    }
    if (fault === 'stall') {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, Math.floor(body.length / 2)));
      return;
    }
    if (fault === 'alter') {
      const altered = Buffer.from(body);
      altered[0] = altered[0]! ^ 0xff;
      res.writeHead(200, { 'content-length': altered.length }).end(altered);
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The nginx binary, or undefined (the nginx tests then skip with a message). */
export function nginxBinary(): string | undefined {
  for (const candidate of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) if (existsSync(candidate)) return candidate;
  const found = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() ? found.stdout.trim() : undefined;
}

export interface Nginx {
  url: string;
  root: string;
  accessLog(): string[];
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** nginx on 127.0.0.1 with the shipped config, its root and logs in a temp folder. */
export async function startNginx(binary: string): Promise<Nginx> {
  const root = tempDir('runner-nginx-');
  chmodSync(root, 0o755);
  mkdirSync(join(root, 'tmp'));
  const port = await freePort();
  let conf = readFileSync(nginxConf, 'utf8').replaceAll('/srv/runner-cache', root).replace(/listen 8080;/, `listen 127.0.0.1:${port};`);
  // As root, nginx's workers would run as nobody, who can't write the temp root; tests keep them as root.
  if (process.getuid?.() === 0) conf = `user root;\n${conf}`;
  if (!conf.includes(root) || !conf.includes(`${port}`)) throw new Error('docs/remote-cache.nginx.conf no longer has the root and port the tests replace');
  const confFile = join(root, 'nginx.conf');
  writeFileSync(confFile, conf);
  const child = spawn(binary, ['-c', confFile, '-p', root, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}/`;
  const until = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    try {
      const res = await fetch(`${url}cas/${'0'.repeat(64)}`, { method: 'HEAD' });
      if (res.status === 404) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`nginx did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    root,
    accessLog: () => (existsSync(join(root, 'access.log')) ? readFileSync(join(root, 'access.log'), 'utf8').split('\n').filter(Boolean) : []),
    stop: async () => {
      if (child.exitCode === null) {
        await new Promise((resolve) => {
          child.once('exit', resolve);
          child.kill('SIGTERM');
        });
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A fault-injecting server and transfers to it whose warnings are collected, for the in-process remote tests. */
export interface TransferHarness {
  server: FaultServer;
  warnings: string[];
  transfer(store: Store, options?: TransferOptions, url?: string): RemoteTransfer;
  /** GET requests the server has seen (for one path, or all). */
  gets(path?: string): number;
}

/** `timeoutMs`: how long a request may stall (short where a test makes the server slow on purpose). */
export async function transferHarness(timeoutMs: number): Promise<TransferHarness> {
  const server = new FaultServer();
  await server.start();
  const warnings: string[] = [];
  return {
    server,
    warnings,
    transfer: (store, options = {}, url = server.url) =>
      new RemoteTransfer(new HttpBackend(new URL(url), { timeoutMs, connections: 4, env: {} }), store, { retryDelayMs: 5, warn: (m) => warnings.push(m), ...options }),
    gets: (path) => server.log.filter((r) => r.method === 'GET' && (path === undefined || r.path === path)).length,
  };
}
