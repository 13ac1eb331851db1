import { readFileSync } from 'node:fs';
import { Logger } from './log.js';
import { type ReceiveMainIo, receiveMain } from './receive-main.js';
import { wantsJson } from './receive-options.js';
import { reportError } from './report-error.js';

/**
 * `wal receive` without oclif: what the oclif command and BaseCommand did around receiveMain,
 * with the same program name, version text, error reports and exit codes. It imports neither
 * oclif nor anything of the command modules, so the process loads only what receiving needs.
 */

interface PackageManifest {
  readonly version: string;
  readonly oclif: { readonly bin: string };
}

/** The CLI's package.json, for the program name (oclif's `bin`) and the version oclif would report. */
function readManifest(): PackageManifest {
  return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as PackageManifest;
}

/** Runs `wal receive ARGS…` and returns the exit code; any error that escapes is reported as BaseCommand did. */
export async function runReceiveCommand(
  argv: readonly string[],
  io: Pick<ReceiveMainIo, 'stdout' | 'stderr'> = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const manifest = readManifest();
  const program = `${manifest.oclif.bin} receive`;
  try {
    return await receiveMain(argv, { program, version: manifest.version, ...io });
  } catch (error) {
    reportError(new Logger({ program, output: io.stderr, json: wantsJson(argv) }), error);
    return 1;
  }
}

/** bin/run.js: run the command and end the process with its exit code, as oclif's handler does. */
export async function main(argv: readonly string[]): Promise<never> {
  // oclif's Command module ignores EPIPE on stdout (`wal receive --version | head -c1`); so do we.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
  const exitCode = await runReceiveCommand(argv);
  process.exit(exitCode);
}
