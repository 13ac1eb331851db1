import { getoptLong, type LongOption } from './getopt.js';

export interface RestoreOptions {
  archive: string;
  /** `%f`. */
  wanted: string;
  /** `%p`. */
  target: string;
  partial: boolean;
  sync: boolean;
  /** Tries after the first failed one. */
  retries: number;
  retryDelayMs: number;
  /** Segments to fetch ahead (0: none). */
  prefetch: number;
  /** Where prefetched segments wait; undefined: a directory under the system's temporary directory. */
  spool: string | undefined;
  /** Internal: this process is the background prefetcher another `wal restore` started. */
  prefetchWorker: boolean;
}

export type RestoreCommandLine =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'run'; options: RestoreOptions }
  | { kind: 'refused'; message: string };

const LONG_OPTIONS: readonly LongOption[] = [
  { name: 'directory', argument: 'required', key: 'D' },
  { name: 'no-partial', argument: 'none', key: 'no-partial' },
  { name: 'no-sync', argument: 'none', key: 'no-sync' },
  { name: 'retries', argument: 'required', key: 'retries' },
  { name: 'retry-delay', argument: 'required', key: 'retry-delay' },
  { name: 'prefetch', argument: 'required', key: 'prefetch' },
  { name: 'spool', argument: 'required', key: 'spool' },
  { name: 'prefetch-worker', argument: 'none', key: 'prefetch-worker' },
  { name: 'help', argument: 'none', key: '?' },
  { name: 'version', argument: 'none', key: 'V' },
];

/** `wal restore` reads its line with the same getopt work-alike as `wal receive`. */
export function parseRestoreCommandLine(argv: readonly string[]): RestoreCommandLine {
  const parsed = getoptLong(argv, 'D:V?', LONG_OPTIONS);
  let archive: string | undefined;
  const options = {
    partial: true,
    sync: true,
    retries: 3,
    retryDelayMs: 500,
    prefetch: 0,
    spool: undefined as string | undefined,
    prefetchWorker: false,
  };
  for (const item of parsed.items) {
    if (item.kind === 'complaint') return { kind: 'refused', message: item.message };
    const value = item.value ?? '';
    switch (item.key) {
      case '?':
        return { kind: 'help' };
      case 'V':
        return { kind: 'version' };
      case 'D':
        archive = value;
        break;
      case 'no-partial':
        options.partial = false;
        break;
      case 'no-sync':
        options.sync = false;
        break;
      case 'spool':
        options.spool = value;
        break;
      case 'prefetch-worker':
        options.prefetchWorker = true;
        break;
      default: {
        const number = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
        if (Number.isNaN(number))
          return {
            kind: 'refused',
            message: `invalid value "${value}" for option ${item.spelling}: expected a whole number`,
          };
        if (item.key === 'retries') options.retries = number;
        else if (item.key === 'retry-delay') options.retryDelayMs = number;
        else options.prefetch = number;
      }
    }
  }
  if (archive === undefined || archive === '')
    return { kind: 'refused', message: 'no archive directory specified (-D)' };
  if (parsed.operands.length !== 2) {
    return {
      kind: 'refused',
      message: `expected two arguments, the file name and the target path (%f %p), got ${parsed.operands.length}`,
    };
  }
  const [wanted, target] = parsed.operands as [string, string];
  return { kind: 'run', options: { ...options, archive, wanted, target } };
}

export function restoreHelpText(program = 'wal restore'): string {
  return `${program} copies one file from a WAL archive written by wal receive to where
PostgreSQL asks for it: a restore_command.

Usage:
  ${program} -D ARCHIVE [OPTION]... FILE PATH
  restore_command = '${program} -D /path/to/archive %f %p'
  restore_command = '${program} -D s3://BUCKET/PREFIX %f %p'

Options:
  -D, --directory=ARCHIVE  the archive (wal receive -D): a directory, or s3://BUCKET/PREFIX
                           configured from the AWS environment (AWS_ENDPOINT_URL,
                           AWS_REGION, AWS_ACCESS_KEY_ID, AWS_PROFILE...)
      --no-partial         never serve a .partial segment
      --no-sync            do not fsync the restored file
      --prefetch=N         fetch the next N segments ahead, N at once, into the spool
                           directory
      --spool=DIR          where prefetched segments wait (default: under the system's
                           temporary directory, never in the data directory)
      --retries=N          try a failed read N more times (default: 3)
      --retry-delay=MS     wait before the first retry, doubled each time (default: 500)
  -V, --version            print the version, then exit
  -?, --help               show this help, then exit

FILE is found plain or compressed (.gz, .lz4, .zst). When the archive holds only FILE.partial
and it is the newest segment of its timeline, it is served padded with zeros.

Exit status: 0 restored; 1 not in the archive; 255 the archive could not be read (after the
retries), so that PostgreSQL stops instead of ending recovery early. With standby.signal in the
working directory (the data directory), a failure exits 1: the standby falls back to streaming.
`;
}
