import { describe, expect, it } from 'vitest';
import {
  type CompressionRuntime,
  cStrtol,
  parseCompressionSpecification,
  parsePostgresBoolean,
  splitCompressionArgument,
} from './compression-spec.js';
import { CommandLineError } from './errors.js';

const WITHOUT_ZSTD: CompressionRuntime = { zstd: false, nodeVersion: 'v20.0.0' };
const WITH_ZSTD: CompressionRuntime = { zstd: true, nodeVersion: 'v24.0.0' };

function parse(argument: string, runtime = WITHOUT_ZSTD) {
  return parseCompressionSpecification(argument, runtime);
}

function refusal(argument: string, runtime = WITHOUT_ZSTD): CommandLineError {
  try {
    parseCompressionSpecification(argument, runtime);
  } catch (error) {
    expect(error).toBeInstanceOf(CommandLineError);
    return error as CommandLineError;
  }
  throw new Error(`-Z ${argument} was accepted`);
}

describe('splitCompressionArgument (parse_compress_options)', () => {
  it.each([
    ['0', 'none', undefined],
    ['', 'none', undefined],
    ['5', 'gzip', '5'],
    ['-1', 'gzip', '-1'],
    [' 7', 'gzip', ' 7'],
    ['gzip', 'gzip', undefined],
    ['lz4:level=3', 'lz4', 'level=3'],
    ['zstd:level=3:x', 'zstd', 'level=3:x'],
    ['5x', '5x', undefined],
  ])('%j -> %s %j', (argument, algorithm, detail) => {
    expect(splitCompressionArgument(argument)).toEqual({ algorithm, detail });
  });
});

describe('parseCompressionSpecification', () => {
  it.each([
    ['0', { method: 'none' }],
    ['none', { method: 'none' }],
    ['none:0', { method: 'none' }],
    ['', { method: 'none' }],
    ['5', { method: 'gzip', level: 5 }],
    ['-1', { method: 'gzip' }],
    ['gzip', { method: 'gzip' }],
    ['gzip:1', { method: 'gzip', level: 1 }],
    ['gzip:level=9', { method: 'gzip', level: 9 }],
    ['gzip:-1', { method: 'gzip' }],
    ['lz4', { method: 'lz4' }],
    ['lz4:0', { method: 'lz4' }],
    ['lz4:12', { method: 'lz4', level: 12 }],
    ['lz4:level=1,level=4', { method: 'lz4', level: 4 }],
    // strtol's int truncation: 2^32 + 1 is level 1.
    ['4294967297', { method: 'gzip', level: 1 }],
  ])('-Z %j is %j', (argument, expected) => {
    expect(parse(argument)).toEqual(expected);
  });

  it('accepts zstd only where node:zlib has it', () => {
    expect(parse('zstd', WITH_ZSTD)).toEqual({ method: 'zstd' });
    expect(parse('zstd:level=19', WITH_ZSTD)).toEqual({ method: 'zstd', level: 19 });
    expect(parse('zstd:-5', WITH_ZSTD)).toEqual({ method: 'zstd', level: -5 });
    const error = refusal('zstd');
    expect(error.message).toBe(
      'invalid compression specification: this build does not support compression with ZSTD',
    );
    expect(error.detail).toContain('Node.js 22.15');
    expect(error.detail).toContain('v20.0.0');
  });

  it.each([
    ['brotli', 'unrecognized compression algorithm: "brotli"'],
    ['GZIP', 'unrecognized compression algorithm: "GZIP"'],
    ['5x', 'unrecognized compression algorithm: "5x"'],
    [
      'none:1',
      'invalid compression specification: compression algorithm "none" does not accept a compression level',
    ],
    [
      'gzip:',
      'invalid compression specification: found empty string where a compression option was expected',
    ],
    [
      'gzip:level=1,',
      'invalid compression specification: found empty string where a compression option was expected',
    ],
    ['gzip:level', 'invalid compression specification: compression option "level" requires a value'],
    [
      'gzip:level=x',
      'invalid compression specification: value for compression option "level" must be an integer',
    ],
    [
      'gzip:level=',
      'invalid compression specification: value for compression option "level" must be an integer',
    ],
    ['gzip:speed=1', 'invalid compression specification: unrecognized compression option: "speed"'],
    [
      '10',
      'invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9 (default at -1)',
    ],
    [
      'gzip:0',
      'invalid compression specification: compression algorithm "gzip" expects a compression level between 1 and 9 (default at -1)',
    ],
    [
      'lz4:13',
      'invalid compression specification: compression algorithm "lz4" expects a compression level between 1 and 12 (default at 0)',
    ],
    [
      'gzip:workers=2',
      'invalid compression specification: compression algorithm "gzip" does not accept a worker count',
    ],
    [
      'lz4:long',
      'invalid compression specification: compression algorithm "lz4" does not support long-distance mode',
    ],
    [
      'lz4:long=maybe',
      'invalid compression specification: value for compression option "long" must be a Boolean value',
    ],
  ])('-Z %j fails: %s', (argument, message) => {
    const error = refusal(argument);
    expect(error.message).toBe(message);
    expect(error.code).toBe('WAL_ERR_CLI_COMPRESSION');
    // pg_fatal: no "Try --help" hint.
    expect(error.hint).toBe(false);
  });

  it('refuses zstd keywords it cannot honour instead of ignoring them', () => {
    expect(refusal('zstd:workers=4', WITH_ZSTD).message).toBe(
      'compression option "workers" is not supported by wal; zstd writes with a level only',
    );
    expect(refusal('zstd:long', WITH_ZSTD).message).toContain('"long"');
    expect(parse('zstd:long=off', WITH_ZSTD)).toEqual({ method: 'zstd' });
    expect(refusal('zstd:level=23', WITH_ZSTD).message).toBe(
      'invalid compression specification: compression algorithm "zstd" expects a compression level between -131072 and 22 (default at 3)',
    );
  });
});

describe('C helpers', () => {
  it('cStrtol reads like strtol', () => {
    expect(cStrtol('  -42abc')).toEqual({ value: -42n, end: 5 });
    expect(cStrtol('+7')).toEqual({ value: 7n, end: 2 });
    expect(cStrtol('abc')).toEqual({ value: 0n, end: 0 });
    expect(cStrtol(' ')).toEqual({ value: 0n, end: 0 });
    expect(cStrtol('99999999999999999999').value).toBe((1n << 63n) - 1n);
  });

  it('parsePostgresBoolean takes prefixes like parse_bool', () => {
    for (const text of ['t', 'TRUE', 'y', 'yes', 'on', '1']) expect(parsePostgresBoolean(text)).toBe(true);
    for (const text of ['f', 'False', 'n', 'no', 'of', 'off', '0'])
      expect(parsePostgresBoolean(text)).toBe(false);
    for (const text of ['', 'o', 'maybe', '2', 'truex']) expect(parsePostgresBoolean(text)).toBeUndefined();
  });
});
