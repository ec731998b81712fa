// Test fixtures for the runner: a temp workspace built from an object literal, the real CLI run in it (from
// source through tsx), and a fake stage program that counts its runs in runs.log.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../../runner/cli.ts', import.meta.url));
// An absolute loader URL: `--import tsx` would be resolved from the temp dir, where there is no node_modules.
const tsx = import.meta.resolve('tsx');

/**
 * stage.sh NAME OUT... : writes its pid to pid-NAME (temp file + mv: a pid file that exists is whole), appends
 * NAME to runs.log, then writes "NAME <argv>" into each OUT (a path ending in "/" becomes a directory holding
 * one file). Waits while a file named `block-NAME` exists (for kill tests).
 */
export const STAGE_SH = `#!/bin/sh
name="$1"; shift
echo $$ > "pid-$name.tmp" && mv "pid-$name.tmp" "pid-$name"
echo "$name" >> runs.log
while [ -e "block-$name" ]; do sleep 0.05; done
for out in "$@"; do
  case "$out" in
    */) mkdir -p "$out"; echo "$name" > "$out/part.txt" ;;
    *) mkdir -p "$(dirname "$out")"; echo "$name $*" > "$out" ;;
  esac
done
`;

export function makeWorkspace(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'runner-test-'));
  mkdirSync(join(dir, '.runner'));
  writeFiles(dir, { 'stage.sh': STAGE_SH, ...files });
  return dir;
}

export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(cwd: string, args: string[], env: Record<string, string> = {}): CliResult {
  const result = spawnSync(process.execPath, ['--import', tsx, cli, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function spawnCli(cwd: string, args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', tsx, cli, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The stage names in the order they ran, from runs.log. */
export function runs(dir: string): string[] {
  const file = join(dir, 'runs.log');
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

export function runJson(cwd: string, args: string[]): { status: number | null; summary: { ok: boolean; stages: Record<string, { status: string; failure?: { reason: string; message: string } }> }; stderr: string } {
  const result = runCli(cwd, [...args, '--json']);
  let summary;
  try {
    summary = JSON.parse(result.stdout);
  } catch {
    throw new Error(`runner printed no JSON (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  return { status: result.status, summary, stderr: result.stderr };
}

/** The pid of stage.sh NAME, once it has started (stage.sh writes the file whole). */
export function stagePid(dir: string, name: string): number | undefined {
  const file = join(dir, `pid-${name}`);
  return existsSync(file) ? Number(readFileSync(file, 'utf8')) : undefined;
}

export async function waitFor(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
