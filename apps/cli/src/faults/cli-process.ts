/**
 * The built `wal receive` binary as a child process, for the CLI's fault tests. The servers, target
 * directories and the oracle of stored WAL come from `@wal/stream-faults`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FakeWalsender } from '@wal/fake-walsender';

/** The built CLI entry (`npx tsc -b apps/cli` makes dist/). */
export const CLI_BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
const CLI_BUILT = fileURLToPath(new URL('../../dist/commands/receive.js', import.meta.url));

export function cliIsBuilt(): boolean {
  try {
    return statSync(CLI_BUILT).isFile();
  } catch {
    return false;
  }
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface CliProcess {
  child: ChildProcess;
  result: Promise<CliResult>;
}

/**
 * Starts `node bin/run.js receive ARGS…` with a clean environment (no PG* variables of the test
 * runner, no ~/.pgpass) plus `env`; SIGKILLed after `limitMs` so a hang fails the test, not the suite.
 */
export function startCli(
  args: readonly string[],
  options: { env?: Record<string, string>; limitMs?: number } = {},
): CliProcess {
  const child = spawn(process.execPath, [CLI_BIN, 'receive', ...args], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: '/nonexistent',
      PGCONNECT_TIMEOUT: '5',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const result = new Promise<CliResult>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.limitMs ?? 20_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
  return { child, result };
}

/** `startCli(...)` to its end. */
export function runCli(
  args: readonly string[],
  options: { env?: Record<string, string>; limitMs?: number } = {},
): Promise<CliResult> {
  return startCli(args, options).result;
}

/** `-h host -p port -U postgres -D directory`, the connection part of every CLI case. */
export function cliTarget(server: FakeWalsender, directory: string): string[] {
  return ['-h', server.host, '-p', String(server.port), '-U', 'postgres', '-w', '-D', directory];
}
