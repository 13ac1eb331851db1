import { readFileSync } from 'node:fs';
import { ArchiveError, cleanupArchive } from '@wal/archive';
import { type CleanupCommandOptions, cleanupHelpText, parseCleanupCommandLine } from './cleanup-options.js';

/**
 * `wal cleanup`, an archive_cleanup_command, from argv to exit code. bin/run.js runs it without
 * loading oclif, as it does `wal restore`: a standby starts it at every restart point.
 *
 * Exit statuses are pg_archivecleanup's (pg_archivecleanup.c): 2 for a bad command line, a missing
 * archive (or a malformed s3:// URL) or a bad OLDEST_KEPT_WALFILE; 1 when the archive cannot be
 * read (a bucket too: missing, denied, or a store that is down) or a file not removed. PostgreSQL
 * only logs a failed archive_cleanup_command as a warning.
 */
export const EXIT_DONE = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface CleanupMainIo {
  readonly program: string;
  readonly version: string;
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/** bin/run.js: run `wal cleanup ARGS…` and end the process with its exit code. */
export async function main(argv: readonly string[]): Promise<never> {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
    oclif: { bin: string };
  };
  const exitCode = await cleanupMain(argv, {
    program: `${manifest.oclif.bin} cleanup`,
    version: manifest.version,
    stdout: process.stdout,
    stderr: process.stderr,
  });
  // Let a piped stdout (`-n | xargs …`) take every line before the process ends.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit(exitCode);
}

export async function cleanupMain(argv: readonly string[], io: CleanupMainIo): Promise<number> {
  const commandLine = parseCleanupCommandLine(argv);
  const hint = `${io.program}: hint: Try "${io.program} --help" for more information.\n`;
  switch (commandLine.kind) {
    case 'help':
      io.stdout.write(cleanupHelpText(io.program));
      return EXIT_DONE;
    case 'version':
      io.stdout.write(`${io.program} (wal) ${io.version}\n`);
      return EXIT_DONE;
    case 'refused':
      io.stderr.write(`${io.program}: ${commandLine.getopt ? '' : 'error: '}${commandLine.message}\n${hint}`);
      return EXIT_USAGE;
    case 'run':
      return runCleanup(commandLine.options, io, hint);
  }
}

async function runCleanup(options: CleanupCommandOptions, io: CleanupMainIo, hint: string): Promise<number> {
  const debug = (message: string) => {
    if (options.debug) io.stderr.write(`${io.program}: ${message}\n`);
  };
  try {
    for await (const event of cleanupArchive({
      archive: options.archive,
      oldestKept: options.oldestKept,
      extension: options.extension,
      dryRun: options.dryRun,
    })) {
      if (event.kind === 'keeping') {
        debug(`keeping WAL file "${event.path}" and later`);
      } else if (event.dryRun) {
        // The paths alone on stdout, so that they can be piped into another program.
        io.stdout.write(`${event.path}\n`);
        debug(`file "${event.path}" would be removed`);
      } else {
        debug(`removing file "${event.path}"`);
      }
    }
    return EXIT_DONE;
  } catch (error) {
    if (!(error instanceof ArchiveError)) throw error;
    io.stderr.write(`${io.program}: error: ${error.message}\n`);
    switch (error.code) {
      case 'WAL_ERR_ARCHIVE_INVALID_NAME':
      case 'WAL_ERR_ARCHIVE_INVALID_LOCATION':
        io.stderr.write(hint);
        return EXIT_USAGE;
      case 'WAL_ERR_ARCHIVE_MISSING':
        return EXIT_USAGE;
      default:
        return EXIT_FAILED;
    }
  }
}
