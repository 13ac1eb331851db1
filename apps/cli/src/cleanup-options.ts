import { getoptLong, type LongOption } from './getopt.js';

export interface CleanupCommandOptions {
  archive: string;
  /** OLDEST_KEPT_WALFILE (`%r`). */
  oldestKept: string;
  /** pg_archivecleanup's `-x`. */
  extension: string | undefined;
  dryRun: boolean;
  debug: boolean;
}

export type CleanupCommandLine =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run'; options: CleanupCommandOptions }
  /** `getopt` is glibc's complaint (printed without "error:"), as pg_archivecleanup prints it. */
  | { kind: 'refused'; message: string; getopt: boolean };

// pg_archivecleanup 15 reads `getopt(argc, argv, "x:dn")`; the long names are PostgreSQL 17's.
const LONG_OPTIONS: readonly LongOption[] = [
  { name: 'directory', argument: 'required', key: 'D' },
  { name: 'debug', argument: 'none', key: 'd' },
  { name: 'dry-run', argument: 'none', key: 'n' },
  { name: 'strip-extension', argument: 'required', key: 'x' },
  { name: 'help', argument: 'none', key: '?' },
  { name: 'version', argument: 'none', key: 'V' },
];

/**
 * `wal cleanup -D ARCHIVE OLDEST_KEPT_WALFILE`, or pg_archivecleanup's own line
 * `wal cleanup ARCHIVE OLDEST_KEPT_WALFILE`; refusals in pg_archivecleanup's words and order.
 */
export function parseCleanupCommandLine(argv: readonly string[]): CleanupCommandLine {
  const parsed = getoptLong(argv, 'D:dnx:V?', LONG_OPTIONS);
  let archive: string | undefined;
  const options = { extension: undefined as string | undefined, dryRun: false, debug: false };
  for (const item of parsed.items) {
    if (item.kind === 'complaint') return { kind: 'refused', message: item.message, getopt: true };
    switch (item.key) {
      case '?':
        return { kind: 'help' };
      case 'V':
        return { kind: 'version' };
      case 'D':
        archive = item.value ?? '';
        break;
      case 'd':
        options.debug = true;
        break;
      case 'n':
        options.dryRun = true;
        break;
      case 'x':
        options.extension = item.value ?? '';
        break;
    }
  }
  const operands = [...parsed.operands];
  if (archive === undefined) archive = operands.shift();
  const refuse = (message: string): CleanupCommandLine => ({ kind: 'refused', message, getopt: false });
  if (archive === undefined) return refuse('must specify archive location');
  const oldestKept = operands.shift();
  if (oldestKept === undefined) return refuse('must specify oldest kept WAL file');
  if (operands.length > 0) return refuse('too many command-line arguments');
  return { kind: 'run', options: { ...options, archive, oldestKept } };
}

export function cleanupHelpText(program = 'wal cleanup'): string {
  return `${program} removes older WAL files from an archive written by wal receive, as
pg_archivecleanup does: an archive_cleanup_command.

Usage:
  ${program} -D ARCHIVE [OPTION]... OLDEST_KEPT_WALFILE
  ${program} [OPTION]... ARCHIVE OLDEST_KEPT_WALFILE
  archive_cleanup_command = '${program} -D /path/to/archive %r'

Options:
  -D, --directory=ARCHIVE      the archive (wal receive -D): a directory, or s3://BUCKET/PREFIX
                               configured from the AWS environment (AWS_ENDPOINT_URL, keys...)
  -d, --debug                  print what is kept and removed to stderr
  -n, --dry-run                print the paths of the files that would be removed, remove nothing
  -x, --strip-extension=EXT    as pg_archivecleanup -x: strip EXT from each name, then consider
                               only plain and .partial segment names
  -V, --version                print the version, then exit
  -?, --help                   show this help, then exit

Without -x, a segment goes in any form wal receive writes (plain, .gz, .lz4, .zst, each also
.partial) when its segment number (its last 16 hex digits) is before OLDEST_KEPT_WALFILE's,
whatever its timeline. History files, backup history files and other files always stay.
OLDEST_KEPT_WALFILE is a segment name, possibly with .partial or as a backup history file name
(000000010000000000000010.00000020.backup).

Exit status: 0 done; 1 the archive could not be read (for a bucket also: missing, access
denied, store down) or a file not removed; 2 a bad command line, a missing archive directory, a
malformed s3:// URL or a bad OLDEST_KEPT_WALFILE.
`;
}
