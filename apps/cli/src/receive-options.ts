import { type ListenAddress, parseListenAddress } from '@wal/metrics/address';
import { parseLsn } from '@wal/protocol';
import {
  type CompressionRuntime,
  type CompressionSpecification,
  cStrtol,
  currentCompressionRuntime,
  isCSpace,
  parseCompressionSpecification,
} from './compression-spec.js';
import { CommandLineError, UnknownOptionError } from './errors.js';
import { getoptLong, type LongOption } from './getopt.js';

/**
 * The command line of `wal receive`, read the way pg_receivewal reads its own
 * (pg_receivewal.c main(), spec §1.1-1.3): same letters, long names, defaults, checks in the same
 * order, same messages. Pure: no I/O, so every refusal is unit-tested.
 */

export type PasswordPolicy = 'when-asked' | 'never' | 'before-connecting';
export type ReceiveAction = 'stream' | 'create-slot' | 'drop-slot';

export interface ReceiveOptions {
  readonly action: ReceiveAction;
  /** -D; required to stream, ignored by the slot actions. */
  readonly directory: string | undefined;
  /** -E; undefined when absent or 0/0 ("no end position", as in pg_receivewal). */
  readonly endLsn: bigint | undefined;
  readonly ifNotExists: boolean;
  readonly noLoop: boolean;
  /** false with --no-sync. */
  readonly sync: boolean;
  readonly statusIntervalMs: number;
  readonly slot: string | undefined;
  readonly synchronous: boolean;
  /** -v counts. */
  readonly verbose: number;
  readonly compression: CompressionSpecification;
  /** -d, unparsed: libpq-lite parses it when connecting, after the directory check, as libpq does. */
  readonly connectionString: string | undefined;
  readonly host: string | undefined;
  readonly port: string | undefined;
  readonly username: string | undefined;
  /** -w never asks, -W asks before the first attempt, default asks when the server wants one. */
  readonly password: PasswordPolicy;

  // Extensions (not in pg_receivewal; all off by default).
  /** --json or --log-format=json: one JSON object per log line on stderr. */
  readonly json: boolean;
  /** --progress: a status line on stderr when it is a terminal. */
  readonly progress: boolean;
  /** --trace[=FILE]: wire trace to stderr (`true`) or appended to FILE. */
  readonly trace: true | string | undefined;
  /** --receive-timeout=SECS: give up on a silent server (walreceiver's wal_receiver_timeout). */
  readonly receiveTimeoutMs: number | undefined;
  /** --verify: check page headers and record CRCs before WAL is written (@wal/verify). */
  readonly verify: boolean;
  /** --metrics-address=HOST:PORT: serve /metrics, /healthz and /readyz there (@wal/metrics). */
  readonly metricsAddress: ListenAddress | undefined;

  /** --spool=DIR: the local directory WAL goes to before it is uploaded; required with -D s3://. */
  readonly spool: string | undefined;
  /** --partial-upload-interval=SECS: upload the open segment's .partial this often (default 60). */
  readonly partialUploadIntervalMs: number;
  /** --upload-concurrency=N: upload up to N complete segments at once (default 4). */
  readonly uploadConcurrency: number;
  /** --ack=local|remote: report WAL flushed once in the spool (default) or once in the store. */
  readonly ack: 'local' | 'remote';
}

export type ReceiveCommandLine =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'run'; readonly options: ReceiveOptions };

/** pg_receivewal's short-option string, unchanged. */
export const RECEIVE_SHORT_OPTIONS = 'd:D:E:h:np:s:S:U:vwWZ:';

/** pg_receivewal's long options, then ours. Keys of long-only options are their names. */
export const RECEIVE_LONG_OPTIONS: readonly LongOption[] = [
  // pg_receivewal's getopt_long knows these two ahead of the rest (glibc names them first among
  // the possibilities of `--h` and `--v`); only the first argument acts on them, elsewhere its
  // option loop refuses them with the hint line alone.
  { name: 'help', argument: 'none', key: '?' },
  { name: 'version', argument: 'none', key: 'V' },
  { name: 'directory', argument: 'required', key: 'D' },
  { name: 'dbname', argument: 'required', key: 'd' },
  { name: 'endpos', argument: 'required', key: 'E' },
  { name: 'host', argument: 'required', key: 'h' },
  { name: 'port', argument: 'required', key: 'p' },
  { name: 'username', argument: 'required', key: 'U' },
  { name: 'no-loop', argument: 'none', key: 'n' },
  { name: 'no-password', argument: 'none', key: 'w' },
  { name: 'password', argument: 'none', key: 'W' },
  { name: 'status-interval', argument: 'required', key: 's' },
  { name: 'slot', argument: 'required', key: 'S' },
  { name: 'verbose', argument: 'none', key: 'v' },
  { name: 'compress', argument: 'required', key: 'Z' },
  { name: 'create-slot', argument: 'none', key: 'create-slot' },
  { name: 'drop-slot', argument: 'none', key: 'drop-slot' },
  { name: 'if-not-exists', argument: 'none', key: 'if-not-exists' },
  { name: 'synchronous', argument: 'none', key: 'synchronous' },
  { name: 'no-sync', argument: 'none', key: 'no-sync' },
  // Extensions.
  { name: 'json', argument: 'none', key: 'json' },
  { name: 'log-format', argument: 'required', key: 'log-format' },
  { name: 'metrics-address', argument: 'required', key: 'metrics-address' },
  { name: 'progress', argument: 'none', key: 'progress' },
  { name: 'trace', argument: 'optional', key: 'trace' },
  { name: 'receive-timeout', argument: 'required', key: 'receive-timeout' },
  { name: 'verify', argument: 'none', key: 'verify' },
  { name: 'spool', argument: 'required', key: 'spool' },
  { name: 'partial-upload-interval', argument: 'required', key: 'partial-upload-interval' },
  { name: 'upload-concurrency', argument: 'required', key: 'upload-concurrency' },
  { name: 'ack', argument: 'required', key: 'ack' },
];

/** INT_MAX / 1000: the largest interval in seconds whose milliseconds still fit in an int. */
export const MAX_INTERVAL_SECONDS = 2147483;

/**
 * pg_receivewal's main() up to the directory check: help and version as the first argument, the
 * option loop, the post-parse checks, then the compression specification.
 */
export function parseReceiveCommandLine(
  argv: readonly string[],
  runtime: CompressionRuntime = currentCompressionRuntime(),
): ReceiveCommandLine {
  // Like pg_receivewal, help and version are honoured only as the first argument; elsewhere the
  // option loop refuses them.
  const first = argv[0];
  if (first === '--help' || first === '-?') return { kind: 'help' };
  if (first === '--version' || first === '-V') return { kind: 'version' };

  const { items, operands } = getoptLong(argv, RECEIVE_SHORT_OPTIONS, RECEIVE_LONG_OPTIONS);
  const values = defaultValues();
  for (const item of items) {
    if (item.kind === 'complaint') throw new UnknownOptionError(item.message);
    const apply = OPTION_HANDLERS[item.key];
    if (apply === undefined) throw new Error(`option table and parser disagree about ${item.spelling}`);
    apply(values, item.value);
  }
  checkCombinations(values, operands);
  const compression = parseCompressionSpecification(values.compressionArgument, runtime);

  const { compressionArgument: _, createSlot, dropSlot, ...options } = values;
  const action: ReceiveAction = createSlot ? 'create-slot' : dropSlot ? 'drop-slot' : 'stream';
  return { kind: 'run', options: { ...options, action, compression } };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** What the option loop fills in: the options, with -Z unparsed and the slot actions as flags. */
interface OptionValues extends Mutable<Omit<ReceiveOptions, 'action' | 'compression'>> {
  compressionArgument: string;
  createSlot: boolean;
  dropSlot: boolean;
}

/** pg_receivewal's defaults, and ours for the extensions (all off). */
function defaultValues(): OptionValues {
  return {
    directory: undefined,
    endLsn: undefined,
    ifNotExists: false,
    noLoop: false,
    sync: true,
    statusIntervalMs: 10_000,
    slot: undefined,
    synchronous: false,
    verbose: 0,
    compressionArgument: '0',
    connectionString: undefined,
    host: undefined,
    port: undefined,
    username: undefined,
    password: 'when-asked',
    createSlot: false,
    dropSlot: false,
    json: false,
    progress: false,
    trace: undefined,
    receiveTimeoutMs: undefined,
    verify: false,
    metricsAddress: undefined,

    spool: undefined,
    partialUploadIntervalMs: 60_000,
    uploadConcurrency: 4,
    ack: 'local',
  };
}

type OptionHandler = (values: OptionValues, argument: string | undefined) => void;

/**
 * The body of pg_receivewal's option loop, one case per option key. A value is checked where the
 * loop meets it (-E, -s), so the first bad one on the line is the one reported.
 */
const OPTION_HANDLERS: Readonly<Record<string, OptionHandler>> = {
  '?': refuseOutOfPlace,
  V: refuseOutOfPlace,
  d: (values, argument = '') => (values.connectionString = argument),
  D: (values, argument = '') => (values.directory = argument),
  E: (values, argument = '') => (values.endLsn = parseEndPosition(argument)),
  h: (values, argument = '') => (values.host = argument),
  n: (values) => (values.noLoop = true),
  p: (values, argument = '') => (values.port = argument),
  s: (values, argument = '') =>
    (values.statusIntervalMs = parseIntervalSeconds(argument, '-s/--status-interval') * 1000),
  S: (values, argument = '') => (values.slot = argument),
  U: (values, argument = '') => (values.username = argument),
  v: (values) => (values.verbose += 1),
  w: (values) => (values.password = 'never'),
  W: (values) => (values.password = 'before-connecting'),
  Z: (values, argument = '') => (values.compressionArgument = argument),
  'create-slot': (values) => (values.createSlot = true),
  'drop-slot': (values) => (values.dropSlot = true),
  'if-not-exists': (values) => (values.ifNotExists = true),
  synchronous: (values) => (values.synchronous = true),
  'no-sync': (values) => (values.sync = false),
  json: (values) => (values.json = true),
  'log-format': (values, argument = '') => (values.json = parseLogFormat(argument)),
  'metrics-address': (values, argument = '') => (values.metricsAddress = parseMetricsAddress(argument)),
  progress: (values) => (values.progress = true),
  trace: (values, argument) => (values.trace = argument === undefined || argument === '' ? true : argument),
  verify: (values) => (values.verify = true),
  'receive-timeout': (values, argument = '') =>
    (values.receiveTimeoutMs = parseIntervalSeconds(argument, '--receive-timeout') * 1000),
  spool: (values, argument = '') => (values.spool = argument),
  'partial-upload-interval': (values, argument = '') =>
    (values.partialUploadIntervalMs = parseIntervalSeconds(argument, '--partial-upload-interval') * 1000),
  ack: (values, argument = '') => (values.ack = parseAck(argument)),
  'upload-concurrency': (values, argument = '') =>
    (values.uploadConcurrency = parseUploadConcurrency(argument)),
};

/** 1 to 64: more PUTs at once than that only hold more memory and sockets. */
function parseUploadConcurrency(text: string): number {
  const value = /^[0-9]{1,2}$/.test(text) ? Number(text) : Number.NaN;
  if (value >= 1 && value <= 64) return value;
  throw new CommandLineError(
    'WAL_ERR_CLI_INVALID_VALUE',
    `invalid value "${text}" for option --upload-concurrency: expected a number from 1 to 64`,
  );
}

function parseAck(text: string): 'local' | 'remote' {
  if (text === 'local' || text === 'remote') return text;
  throw new CommandLineError(
    'WAL_ERR_CLI_INVALID_VALUE',
    `invalid value "${text}" for option --ack: expected "local" or "remote"`,
  );
}

/** `-D s3://BUCKET/PREFIX`: the archive is object storage (checked in full when the run opens it). */
export function isObjectStoreLocation(directory: string | undefined): boolean {
  return directory !== undefined && /^s3:\/\//i.test(directory);
}

/** `--help`/`--version` after the first argument: pg_receivewal's `default:` case, the hint alone. */
function refuseOutOfPlace(): never {
  throw new UnknownOptionError('');
}

/** The post-parse checks, in pg_receivewal's order (pg_receivewal.c:754-793). */
function checkCombinations(values: OptionValues, operands: readonly string[]): void {
  const { createSlot, dropSlot } = values;
  if (operands.length > 0) {
    throw usage(`too many command-line arguments (first is "${operands[0]}")`);
  }
  if (dropSlot && createSlot) {
    throw usage('cannot use --create-slot together with --drop-slot');
  }
  if (values.slot === undefined && (dropSlot || createSlot)) {
    throw usage(`${dropSlot ? '--drop-slot' : '--create-slot'} needs a slot to be specified using --slot`);
  }
  if (values.synchronous && !values.sync) {
    throw usage('cannot use --synchronous together with --no-sync');
  }
  if (values.directory === undefined && !dropSlot && !createSlot) {
    throw usage('no target directory specified');
  }
  checkObjectStoreOptions(values);
}

/** Ours: --spool goes with -D s3://… and only with it; so does --ack remote. */
function checkObjectStoreOptions(values: OptionValues): void {
  if (values.createSlot || values.dropSlot) return;
  if (isObjectStoreLocation(values.directory)) {
    if (values.spool === undefined || values.spool === '') {
      // The URL is not repeated: it may carry a secret (s3://key:secret@…, refused when opened).
      throw usage('-D s3://… needs --spool=DIR: a local directory WAL is written to before it is uploaded');
    }
    return;
  }
  if (values.spool !== undefined) throw usage('--spool is only used with -D s3://BUCKET/PREFIX');
  if (values.ack === 'remote') throw usage('--ack=remote is only used with -D s3://BUCKET/PREFIX');
}

function usage(message: string): CommandLineError {
  return new CommandLineError('WAL_ERR_CLI_USAGE', message, { hint: true });
}

/**
 * -E: the strict form of PostgreSQL 20's pg_parse_lsn (1-8 hex digits, '/', 1-8 hex digits),
 * which rejects what the old sscanf("%X/%X") let through (`1/2/3`, `123456789/0`). 0/0 means none.
 */
export function parseEndPosition(text: string): bigint | undefined {
  let lsn: bigint;
  try {
    lsn = parseLsn(text);
  } catch (error) {
    throw new CommandLineError('WAL_ERR_CLI_END_POSITION', `could not parse end position "${text}"`, {
      cause: error,
    });
  }
  return lsn === 0n ? undefined : lsn;
}

/**
 * option_parse_int(optarg, name, 0, INT_MAX / 1000) from fe_utils/option_utils.c: strtol with
 * leading and trailing white space allowed (an empty string reads as 0, as there), then a range
 * check whose message names the option.
 */
export function parseIntervalSeconds(text: string, optionName: string): number {
  const parsed = cStrtol(text);
  let end = parsed.end;
  while (end < text.length && isCSpace(text[end]!)) end += 1;
  if (end !== text.length) {
    throw new CommandLineError(
      'WAL_ERR_CLI_INVALID_VALUE',
      `invalid value "${text}" for option ${optionName}`,
    );
  }
  if (parsed.value < 0n || parsed.value > BigInt(MAX_INTERVAL_SECONDS)) {
    throw new CommandLineError(
      'WAL_ERR_CLI_OUT_OF_RANGE',
      `${optionName} must be in range 0..${MAX_INTERVAL_SECONDS}`,
    );
  }
  return Number(parsed.value);
}

/** --log-format: `text` (the default) or `json`; whether it is JSON. */
export function parseLogFormat(text: string): boolean {
  if (text === 'json' || text === 'text') return text === 'json';
  throw new CommandLineError(
    'WAL_ERR_CLI_INVALID_VALUE',
    `invalid value "${text}" for option --log-format: expected "text" or "json"`,
  );
}

/** --metrics-address: `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (every interface); port 0 picks a free one. */
export function parseMetricsAddress(text: string): ListenAddress {
  try {
    return parseListenAddress(text);
  } catch (error) {
    throw new CommandLineError(
      'WAL_ERR_CLI_INVALID_VALUE',
      `invalid value "${text}" for option --metrics-address: expected HOST:PORT, [IPV6]:PORT or :PORT, with a port from 0 to 65535`,
      { cause: error },
    );
  }
}

/**
 * Whether the options ask for JSON logs (`--json`, `--log-format json`; the last one wins, before
 * `--`), so even a refused command line reports in JSON.
 */
export function wantsJson(argv: readonly string[]): boolean {
  let json = false;
  for (let index = 0; index < argv.length; index += 1) {
    const argument = argv[index];
    if (argument === '--') break;
    if (argument === '--json' || argument === '--log-format=json') json = true;
    else if (argument === '--log-format=text') json = false;
    else if (argument === '--log-format')
      json = argv[index + 1] === 'json' || (argv[index + 1] !== 'text' && json);
  }
  return json;
}
