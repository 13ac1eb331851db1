import { describe, expect, it } from 'vitest';
import type { CompressionRuntime } from './compression-spec.js';
import { CommandLineError, UnknownOptionError } from './errors.js';
import {
  MAX_INTERVAL_SECONDS,
  parseEndPosition,
  parseIntervalSeconds,
  parseReceiveCommandLine,
  type ReceiveOptions,
  wantsJson,
} from './receive-options.js';

const RUNTIME: CompressionRuntime = { zstd: false, nodeVersion: 'v20.0.0' };

function options(...argv: string[]): ReceiveOptions {
  const result = parseReceiveCommandLine(argv, RUNTIME);
  if (result.kind !== 'run') throw new Error(`expected a run, got ${result.kind}`);
  return result.options;
}

function refusal(...argv: string[]): CommandLineError {
  try {
    parseReceiveCommandLine(argv, RUNTIME);
  } catch (error) {
    expect(error).toBeInstanceOf(CommandLineError);
    return error as CommandLineError;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}

describe('parseReceiveCommandLine: help and version', () => {
  it.each(['--help', '-?'])('%s as the first argument is help', (flag) => {
    expect(parseReceiveCommandLine([flag, '-D', 'x'], RUNTIME)).toEqual({ kind: 'help' });
  });

  it.each(['--version', '-V'])('%s as the first argument is the version', (flag) => {
    expect(parseReceiveCommandLine([flag], RUNTIME)).toEqual({ kind: 'version' });
  });

  it('refuses them anywhere else, as pg_receivewal does', () => {
    // getopt knows --help and --version (pg_receivewal 15 prints the hint line alone for them).
    expect(refusal('-D', 'x', '--version').message).toBe('');
    expect(refusal('-D', 'x', '--hel').message).toBe('');
    expect(refusal('-D', 'x', '--h').message).toBe(
      "option '--h' is ambiguous; possibilities: '--help' '--host'",
    );
    expect(refusal('-D', 'x', '-V').message).toBe("invalid option -- 'V'");
    expect(refusal('-D', 'x', '-?').message).toBe("invalid option -- '?'");
  });
});

describe('parseReceiveCommandLine: values', () => {
  it('has pg_receivewal defaults', () => {
    expect(options('-D', 'dir')).toEqual({
      action: 'stream',
      directory: 'dir',
      endLsn: undefined,
      ifNotExists: false,
      noLoop: false,
      sync: true,
      statusIntervalMs: 10_000,
      slot: undefined,
      synchronous: false,
      verbose: 0,
      compression: { method: 'none' },
      connectionString: undefined,
      host: undefined,
      port: undefined,
      username: undefined,
      password: 'when-asked',
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
    });
  });

  it('reads every option by its short and long name', () => {
    const short = options(
      ...['-D', 'd', '-E', '0/3000000', '-n', '-s', '5', '-S', 'slot1', '-v', '-v', '-Z', 'lz4:3'],
      ...['-d', 'host=x', '-h', 'h', '-p', '5433', '-U', 'u', '-W'],
    );
    const long = options(
      ...['--directory=d', '--endpos=0/3000000', '--no-loop', '--status-interval=5', '--slot=slot1'],
      ...['--verbose', '--verbose', '--compress=lz4:3', '--dbname=host=x', '--host=h', '--port=5433'],
      ...['--username=u', '--password'],
    );
    expect(long).toEqual(short);
    expect(short).toMatchObject({
      directory: 'd',
      endLsn: 0x3000000n,
      noLoop: true,
      statusIntervalMs: 5000,
      slot: 'slot1',
      verbose: 2,
      compression: { method: 'lz4', level: 3 },
      connectionString: 'host=x',
      host: 'h',
      port: '5433',
      username: 'u',
      password: 'before-connecting',
    });
  });

  it('reads getopt forms: attached values, clusters, options after operands are still checked', () => {
    expect(options('-Z5', '-nvvDdir')).toMatchObject({
      compression: { method: 'gzip', level: 5 },
      noLoop: true,
      verbose: 2,
      directory: 'dir',
    });
  });

  it('lets the last of a repeated option win, and -w/-W override each other', () => {
    expect(options('-D', 'a', '-D', 'b', '-s', '1', '-s', '2', '-W', '-w')).toMatchObject({
      directory: 'b',
      statusIntervalMs: 2000,
      password: 'never',
    });
  });

  it('reads the long-only options and the extensions', () => {
    expect(
      options(
        '-D',
        'd',
        '--synchronous',
        '--if-not-exists',
        '--json',
        '--progress',
        '--trace',
        '--receive-timeout=30',
        '--verify',
      ),
    ).toMatchObject({
      verify: true,
      synchronous: true,
      ifNotExists: true,
      json: true,
      progress: true,
      trace: true,
      receiveTimeoutMs: 30_000,
    });
    expect(options('-D', 'd', '--no-sync', '--trace=wire.log')).toMatchObject({
      sync: false,
      trace: 'wire.log',
    });
  });

  it('treats --endpos 0/0 as no end position', () => {
    expect(options('-D', 'd', '-E', '0/0').endLsn).toBeUndefined();
  });

  it('picks the slot action', () => {
    expect(options('--create-slot', '-S', 's').action).toBe('create-slot');
    expect(options('--drop-slot', '-S', 's').action).toBe('drop-slot');
    // The slot actions need no directory.
    expect(options('--drop-slot', '-S', 's').directory).toBeUndefined();
  });
});

describe('parseReceiveCommandLine: refusals (spec §1.1, §1.2, TAP cases 4-10)', () => {
  it.each([
    [['--not-a-valid-option'], "unrecognized option '--not-a-valid-option'"],
    [['-D', 'd', '-x'], "invalid option -- 'x'"],
    [['-D'], "option requires an argument -- 'D'"],
    [['--slot'], "option '--slot' requires an argument"],
    [['--no-loop=1'], "option '--no-loop' doesn't allow an argument"],
    [['--no'], "option '--no' is ambiguous; possibilities: '--no-loop' '--no-password' '--no-sync'"],
  ])('getopt complaint for %j: %s', (argv, message) => {
    const error = refusal(...argv);
    expect(error).toBeInstanceOf(UnknownOptionError);
    expect(error.message).toBe(message);
    expect(error.hint).toBe(true);
  });

  it.each([
    [[], 'no target directory specified'],
    [['-D', 'd', 'extra', 'more'], 'too many command-line arguments (first is "extra")'],
    [['-D', 'd', '--create-slot', '--drop-slot'], 'cannot use --create-slot together with --drop-slot'],
    [['-D', 'd', '--create-slot'], '--create-slot needs a slot to be specified using --slot'],
    [['-D', 'd', '--drop-slot'], '--drop-slot needs a slot to be specified using --slot'],
    [['-D', 'd', '--synchronous', '--no-sync'], 'cannot use --synchronous together with --no-sync'],
    [['-v'], 'no target directory specified'],
  ])('post-parse check for %j: %s', (argv, message) => {
    const error = refusal(...argv);
    expect(error.message).toBe(message);
    expect(error.code).toBe('WAL_ERR_CLI_USAGE');
    expect(error.hint).toBe(true);
  });

  it('runs the post-parse checks in pg_receivewal order', () => {
    // Operands before the create/drop conflict, that before the missing slot, and so on.
    expect(refusal('x', '--create-slot', '--drop-slot').message).toMatch(/too many command-line arguments/);
    expect(refusal('--create-slot', '--drop-slot', '--synchronous', '--no-sync').message).toMatch(
      /together with --drop-slot/,
    );
    expect(refusal('--drop-slot', '--synchronous', '--no-sync').message).toMatch(/needs a slot/);
    expect(refusal('--synchronous', '--no-sync').message).toMatch(/--synchronous together with --no-sync/);
    expect(refusal('-Z', 'bogus').message).toBe('no target directory specified');
    expect(refusal('-D', 'd', '-Z', 'none:1').message).toBe(
      'invalid compression specification: compression algorithm "none" does not accept a compression level',
    );
  });

  it('refuses a bad option value at its place in the option loop, before later complaints', () => {
    expect(refusal('-s', 'x', '--bogus').message).toBe('invalid value "x" for option -s/--status-interval');
    expect(refusal('--bogus', '-s', 'x').message).toBe("unrecognized option '--bogus'");
    expect(refusal('-E', '1/2/3', 'operand').message).toBe('could not parse end position "1/2/3"');
  });

  it.each(['123456789/0', '1/2/3', '0/', '/0', 'x/1', '0/123456789', '', '0/0 ', ' 0/0'])(
    'refuses end position %j (strict pg_parse_lsn, TAP cases 5-6)',
    (text) => {
      const error = refusal('-D', 'd', '--endpos', text);
      expect(error.message).toBe(`could not parse end position "${text}"`);
      expect(error.hint).toBe(false);
    },
  );

  it.each([
    ['x', 'invalid value "x" for option -s/--status-interval'],
    ['1.5', 'invalid value "1.5" for option -s/--status-interval'],
    ['5s', 'invalid value "5s" for option -s/--status-interval'],
    ['-1', '-s/--status-interval must be in range 0..2147483'],
    ['2147484', '-s/--status-interval must be in range 0..2147483'],
    ['99999999999999999999', '-s/--status-interval must be in range 0..2147483'],
  ])('refuses -s %j: %s', (text, message) => {
    const error = refusal('-D', 'd', '-s', text);
    expect(error.message).toBe(message);
    expect(error.hint).toBe(false);
  });

  it('validates --receive-timeout like -s, naming it', () => {
    expect(refusal('-D', 'd', '--receive-timeout=-5').message).toBe(
      '--receive-timeout must be in range 0..2147483',
    );
  });
});

describe('option helpers', () => {
  it('parseIntervalSeconds follows option_parse_int: white space around, empty is 0', () => {
    expect(parseIntervalSeconds(' 7 ', '-s')).toBe(7);
    expect(parseIntervalSeconds('0', '-s')).toBe(0);
    expect(parseIntervalSeconds('', '-s')).toBe(0);
    expect(parseIntervalSeconds(String(MAX_INTERVAL_SECONDS), '-s')).toBe(MAX_INTERVAL_SECONDS);
  });

  it('parseEndPosition accepts 1-8 hex digits on each side, any case', () => {
    expect(parseEndPosition('16/B374D848')).toBe(0x16b374d848n);
    expect(parseEndPosition('ffffffff/ffffffff')).toBe(0xffffffffffffffffn);
    expect(parseEndPosition('0/00700090')).toBe(0x700090n);
  });

  it('wantsJson looks for --json or --log-format json before --; the last one wins', () => {
    expect(wantsJson(['-D', 'x', '--json'])).toBe(true);
    expect(wantsJson(['--', '--json'])).toBe(false);
    expect(wantsJson(['-D', 'x'])).toBe(false);
    expect(wantsJson(['--log-format', 'json'])).toBe(true);
    expect(wantsJson(['--log-format=json'])).toBe(true);
    expect(wantsJson(['--json', '--log-format=text'])).toBe(false);
    expect(wantsJson(['--json', '--log-format', 'text'])).toBe(false);
    expect(wantsJson(['--log-format', 'text', '--json'])).toBe(true);
  });

  it('--log-format takes text or json, as --json does', () => {
    expect(options('-D', 'x', '--log-format', 'json').json).toBe(true);
    expect(options('-D', 'x', '--json', '--log-format=text').json).toBe(false);
    expect(options('-D', 'x').json).toBe(false);
    expect(() => options('-D', 'x', '--log-format=yaml')).toThrow(
      expect.objectContaining({
        code: 'WAL_ERR_CLI_INVALID_VALUE',
        message: 'invalid value "yaml" for option --log-format: expected "text" or "json"',
      }),
    );
  });

  it('--metrics-address takes HOST:PORT, [IPV6]:PORT or :PORT', () => {
    expect(options('-D', 'x').metricsAddress).toBeUndefined();
    expect(options('-D', 'x', '--metrics-address', '127.0.0.1:9187').metricsAddress).toEqual({
      host: '127.0.0.1',
      port: 9187,
    });
    expect(options('-D', 'x', '--metrics-address=[::1]:0').metricsAddress).toEqual({ host: '::1', port: 0 });
    for (const bad of ['9187', 'localhost:', 'localhost:70000', 'a:b']) {
      expect(() => options('-D', 'x', `--metrics-address=${bad}`)).toThrow(
        expect.objectContaining({
          code: 'WAL_ERR_CLI_INVALID_VALUE',
          message: `invalid value "${bad}" for option --metrics-address: expected HOST:PORT, [IPV6]:PORT or :PORT, with a port from 0 to 65535`,
        }),
      );
    }
  });
});

describe('parseReceiveCommandLine: object storage (-D s3://…)', () => {
  it('reads --spool, --partial-upload-interval and --ack', () => {
    const parsed = options(
      '-D',
      's3://bucket/prefix',
      '--spool=/var/spool/wal',
      '--partial-upload-interval',
      '15',
      '--ack=remote',
      '--upload-concurrency=8',
    );
    expect(parsed).toMatchObject({
      uploadConcurrency: 8,
      directory: 's3://bucket/prefix',
      spool: '/var/spool/wal',
      partialUploadIntervalMs: 15_000,
      ack: 'remote',
    });
    expect(options('-D', 'S3://bucket', '--spool', 'x')).toMatchObject({
      ack: 'local',
      partialUploadIntervalMs: 60_000,
      uploadConcurrency: 4,
    });
  });

  it('needs --spool with an s3:// location', () => {
    const error = refusal('-D', 's3://bucket/prefix');
    expect(error.code).toBe('WAL_ERR_CLI_USAGE');
    expect(error.message).toBe(
      '-D s3://… needs --spool=DIR: a local directory WAL is written to before it is uploaded',
    );
    expect(refusal('-D', 's3://bucket', '--spool=').code).toBe('WAL_ERR_CLI_USAGE');
    // A URL is never repeated: it may carry a secret (s3://key:secret@bucket is refused later).
    expect(refusal('-D', 's3://key:secret@bucket').message).not.toContain('secret');
  });

  it('refuses --spool and --ack=remote with a directory', () => {
    expect(refusal('-D', 'dir', '--spool', 'x').message).toBe(
      '--spool is only used with -D s3://BUCKET/PREFIX',
    );
    expect(refusal('-D', 'dir', '--ack', 'remote').message).toBe(
      '--ack=remote is only used with -D s3://BUCKET/PREFIX',
    );
    expect(options('-D', 'dir', '--ack', 'local').ack).toBe('local');
  });

  it('refuses bad values where the option loop meets them', () => {
    expect(refusal('-D', 's3://b', '--spool=x', '--ack=cloud').message).toBe(
      'invalid value "cloud" for option --ack: expected "local" or "remote"',
    );
    expect(refusal('-D', 's3://b', '--spool=x', '--partial-upload-interval=soon').message).toBe(
      'invalid value "soon" for option --partial-upload-interval',
    );
    expect(refusal('-D', 's3://b', '--spool=x', '--partial-upload-interval=-1').code).toBe(
      'WAL_ERR_CLI_OUT_OF_RANGE',
    );
    for (const bad of ['0', '65', 'many', '-1', '2.5'])
      expect(refusal('-D', 's3://b', '--spool=x', `--upload-concurrency=${bad}`).message).toBe(
        `invalid value "${bad}" for option --upload-concurrency: expected a number from 1 to 64`,
      );
  });

  it('lets slot actions through without --spool', () => {
    const result = parseReceiveCommandLine(['-D', 's3://b', '--slot=s', '--create-slot'], RUNTIME);
    expect(result).toMatchObject({ kind: 'run', options: { action: 'create-slot' } });
  });
});
