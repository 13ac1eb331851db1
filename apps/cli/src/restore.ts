import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import {
  type ArchiveError,
  defaultSpoolDirectory,
  prefetcherRunning,
  type RestoreResult,
  restoreWithRetries,
  runPrefetcher,
  takeFromSpool,
} from '@wal/archive';
import { parseRestoreCommandLine, type RestoreOptions, restoreHelpText } from './restore-options.js';

/**
 * `wal restore`, a restore_command, from argv to exit code. bin/run.js runs it without loading
 * oclif: PostgreSQL starts one process per file, and oclif triples the cost of each
 * (docs/adr/0008-wal-restore.md).
 *
 * Exit statuses are a contract with PostgreSQL (xlogarchive.c, spec/archive.md §1.2): 0 restored;
 * 1 not there (recovery ends, or a standby streams); above 125 for anything else, which makes
 * recovery stop with FATAL instead of ending early at the wrong point.
 */
const require = createRequire(import.meta.url);

export const EXIT_RESTORED = 0;
export const EXIT_NOT_FOUND = 1;
export const EXIT_FAILED = 255;

export interface RestoreMainIo {
  readonly program: string;
  readonly version: string;
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  /** The working directory: PostgreSQL runs restore_command in the data directory. */
  readonly cwd?: string;
  /** Aborts a restore in progress: its temporary file is removed, the target left untouched. */
  readonly signal?: AbortSignal;
}

/** bin/run.js: run `wal restore ARGS…` and end the process with its exit code. */
export async function main(argv: readonly string[]): Promise<never> {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
    oclif: { bin: string };
  };
  // PostgreSQL's fast shutdown signals the call's process group. The copy stops and removes its
  // temporary file from pg_wal; then the process ends by the same signal, which the server reads
  // as its shutdown (exit 143 would do as well, but a signal is what a killed `cp` reports).
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    received = signal;
    controller.abort(new Error(`received ${signal}`));
    // A read that never returns (a hung network mount) must not keep the server waiting.
    setTimeout(() => endBySignal(signal, onSignal), 2000);
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const exitCode = await restoreMain(argv, {
    program: `${manifest.oclif.bin} restore`,
    version: manifest.version,
    stdout: process.stdout,
    stderr: process.stderr,
    signal: controller.signal,
  });
  if (received !== undefined) endBySignal(received, onSignal);
  process.exit(exitCode);
}

function endBySignal(signal: NodeJS.Signals, handler: (signal: NodeJS.Signals) => void): void {
  process.removeListener('SIGTERM', handler);
  process.removeListener('SIGINT', handler);
  process.kill(process.pid, signal);
}

export async function restoreMain(argv: readonly string[], io: RestoreMainIo): Promise<number> {
  const commandLine = parseRestoreCommandLine(argv);
  switch (commandLine.kind) {
    case 'help':
      io.stdout.write(restoreHelpText(io.program));
      return EXIT_RESTORED;
    case 'version':
      io.stdout.write(`${io.program} (wal) ${io.version}\n`);
      return EXIT_RESTORED;
    case 'refused':
      // Not 1 or 2: PostgreSQL would take those for "not in the archive" and end recovery early.
      io.stderr.write(
        `${io.program}: error: ${commandLine.message}\n${io.program}: hint: Try "${io.program} --help" for more information.\n`,
      );
      return EXIT_FAILED;
    case 'run':
      if (commandLine.options.prefetchWorker) return runPrefetchWorker(commandLine.options);
      return runRestore(commandLine.options, io);
  }
}

async function runRestore(options: RestoreOptions, io: RestoreMainIo): Promise<number> {
  const log = (level: string, message: string) => io.stderr.write(`${io.program}: ${level}: ${message}\n`);
  const spool =
    options.prefetch > 0
      ? (options.spool ?? defaultSpoolDirectory(options.archive, io.cwd ?? process.cwd()))
      : undefined;
  if (spool !== undefined && /^[0-9A-F]{24}$/.test(options.wanted)) {
    const taken = await takeFromSpool(spool, options.wanted, options.target, options.sync, io.signal);
    if (taken?.status === 'restored') {
      startPrefetcher(options, spool, taken);
      return EXIT_RESTORED;
    }
  }
  let result: RestoreResult;
  try {
    result = await restoreWithRetries(
      {
        archive: options.archive,
        wanted: options.wanted,
        target: options.target,
        partial: options.partial,
        sync: options.sync,
        signal: io.signal,
      },
      {
        attempts: options.retries + 1,
        firstDelayMs: options.retryDelayMs,
        onRetry: (error: ArchiveError, attempt: number, delayMs: number) =>
          log(
            'warning',
            `${error.message} (try ${attempt} of ${options.retries + 1}; trying again in ${delayMs} ms)`,
          ),
      },
    );
  } catch (error) {
    log(
      'error',
      `could not restore "${options.wanted}": ${error instanceof Error ? error.message : String(error)}`,
    );
    if (existsSync(`${io.cwd ?? process.cwd()}/standby.signal`)) {
      log(
        'detail',
        'standby.signal is present: exiting with 1, so the standby tries streaming and then the archive again',
      );
      return EXIT_NOT_FOUND;
    }
    return EXIT_FAILED;
  }
  if (result.status === 'not-found') return EXIT_NOT_FOUND;
  if (spool !== undefined) startPrefetcher(options, spool, result);
  if (result.paddedBytes > 0 || result.file.partial) {
    log(
      'notice',
      `"${options.wanted}" is only in the archive as "${result.file.name}": restored its ${result.bytes} bytes and ${result.paddedBytes} zero bytes of padding; recovery ends where it ends`,
    );
  }
  return EXIT_RESTORED;
}

/**
 * Starts a background `wal restore --prefetch-worker` after a complete segment was restored,
 * unless one is running for this spool. It is detached (its own session), so this call returns
 * at once and PostgreSQL's signals to this call's process group do not reach it; it stops by
 * itself (src/prefetch.ts of @wal/archive).
 */
function startPrefetcher(options: RestoreOptions, spool: string, result: RestoreResult): void {
  if (result.status !== 'restored' || result.file.partial || result.segmentSize === undefined) return;
  if (prefetcherRunning(spool)) return;
  const script = process.argv[1];
  if (script === undefined) return;
  const args = [script, 'restore', '--prefetch-worker', `--prefetch=${options.prefetch}`, `--spool=${spool}`];
  args.push('-D', options.archive, options.wanted, String(result.segmentSize));
  // node:child_process only when prefetching: most calls never need it.
  const { spawn } = require('node:child_process') as typeof import('node:child_process');
  spawn(process.execPath, args, { detached: true, stdio: 'ignore' }).unref();
}

async function runPrefetchWorker(options: RestoreOptions): Promise<number> {
  const segmentSize = Number(options.target);
  if (options.spool === undefined || !Number.isInteger(segmentSize)) return EXIT_FAILED;
  await runPrefetcher({
    archive: options.archive,
    spool: options.spool,
    after: options.wanted,
    segmentSize,
    count: options.prefetch,
  });
  return EXIT_RESTORED;
}
