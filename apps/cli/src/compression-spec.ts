import { createRequire } from 'node:module';
import { CommandLineError } from './errors.js';

/**
 * `-Z/--compress` as PostgreSQL reads it (src/common/compression.c, spec §1.3): a bare integer
 * (0 = none, anything else = a gzip level) or `METHOD[:DETAIL]`, where DETAIL is a bare integer
 * level or a comma list of `level=N`, `workers=N`, `long[=BOOL]`. Messages are PostgreSQL's.
 */

export type CompressionMethod = 'none' | 'gzip' | 'lz4' | 'zstd';

export interface CompressionSpecification {
  readonly method: CompressionMethod;
  /** Undefined means the method's own default (gzip -1, lz4 0, zstd 3). */
  readonly level?: number;
}

export interface CompressionRuntime {
  /** Whether node:zlib has zstd (Node.js 22.15 / 23.8 and newer). */
  readonly zstd: boolean;
  readonly nodeVersion: string;
  /**
   * Refuse a valid zstd specification as pg_receivewal 15 does ("compression with ZSTD is not yet
   * supported"), for the drop-in name: `.zst` segments are our extension.
   */
  readonly refuseZstd?: boolean;
}

/** The runtime under the drop-in name: pg_receivewal 15 as Debian builds it, with zstd in libpq's parser. */
export const PG_RECEIVEWAL_15_COMPRESSION: CompressionRuntime = {
  zstd: true,
  nodeVersion: process.version,
  refuseZstd: true,
};

export function currentCompressionRuntime(): CompressionRuntime {
  return {
    // Looked up only for `-Z zstd`: loading node:zlib costs resident memory that `wal receive`
    // without compression never needs (bench/README.md, "Memory").
    get zstd(): boolean {
      const zlib = createRequire(import.meta.url)('node:zlib') as { createZstdCompress?: unknown };
      return typeof zlib.createZstdCompress === 'function';
    },
    nodeVersion: process.version,
  };
}

// The level rules are also in @wal/sink-fs (resolveCompression), which checks what a library
// caller passes. The CLI keeps its own copy on purpose: `-Z` is refused before the directory check,
// as pg_receivewal does, and `--version`, `-?` and a refused command line load none of the client
// (start-up.integration.test.ts). Keep the two tables equal.

/** zstd's own limits (ZSTD_minCLevel() is -ZSTD_TARGETLENGTH_MAX, ZSTD_maxCLevel() 22). */
const ZSTD_MIN_LEVEL = -131072;
const ZSTD_MAX_LEVEL = 22;
const ZSTD_DEFAULT_LEVEL = 3;

interface LevelRule {
  readonly min: number;
  readonly max: number;
  readonly defaultLevel: number;
}

const LEVEL_RULES: Record<Exclude<CompressionMethod, 'none'>, LevelRule> = {
  gzip: { min: 1, max: 9, defaultLevel: -1 },
  lz4: { min: 1, max: 12, defaultLevel: 0 },
  zstd: { min: ZSTD_MIN_LEVEL, max: ZSTD_MAX_LEVEL, defaultLevel: ZSTD_DEFAULT_LEVEL },
};

/**
 * Parse and validate a `-Z` argument. Throws CommandLineError with PostgreSQL's message (and, as
 * pg_receivewal's `pg_fatal`, no hint line).
 */
export function parseCompressionSpecification(
  argument: string,
  runtime: CompressionRuntime = currentCompressionRuntime(),
): CompressionSpecification {
  const { algorithm, detail } = splitCompressionArgument(argument);
  if (algorithm !== 'none' && algorithm !== 'gzip' && algorithm !== 'lz4' && algorithm !== 'zstd') {
    throw new CommandLineError(
      'WAL_ERR_CLI_COMPRESSION',
      `unrecognized compression algorithm: "${algorithm}"`,
    );
  }
  const parsed = parseDetail(algorithm, detail, runtime);
  const problem = validate(algorithm, parsed);
  if (problem !== undefined) {
    throw new CommandLineError('WAL_ERR_CLI_COMPRESSION', `invalid compression specification: ${problem}`, {
      ...(algorithm === 'zstd' && !runtime.zstd
        ? {
            detail: `zstd needs Node.js 22.15 or newer; this is Node.js ${runtime.nodeVersion}. gzip and lz4 work everywhere.`,
          }
        : {}),
    });
  }
  if (algorithm === 'zstd' && runtime.refuseZstd === true) {
    throw new CommandLineError('WAL_ERR_CLI_COMPRESSION', 'compression with ZSTD is not yet supported');
  }
  // pg_receivewal stops here for zstd ("not yet supported"); writing .zst segments is our extension,
  // and DirectorySink takes only a level, so the zstd-only tuning keywords are refused rather than ignored.
  if (parsed.workers !== undefined || parsed.longDistance) {
    const keyword = parsed.workers !== undefined ? 'workers' : 'long';
    throw new CommandLineError(
      'WAL_ERR_CLI_COMPRESSION',
      `compression option "${keyword}" is not supported by wal; zstd writes with a level only`,
    );
  }
  if (algorithm === 'none') return { method: 'none' };
  const rule = LEVEL_RULES[algorithm];
  return parsed.level === rule.defaultLevel
    ? { method: algorithm }
    : { method: algorithm, level: parsed.level };
}

/** parse_compress_options: the bare-integer shortcut, then a split at the first `:`. */
export function splitCompressionArgument(argument: string): {
  algorithm: string;
  detail: string | undefined;
} {
  const whole = cStrtol(argument);
  // Like strtol's caller in compression.c this checks only that nothing is left over, so the empty
  // string is "none" too.
  if (whole.end === argument.length) {
    return whole.value === 0n
      ? { algorithm: 'none', detail: undefined }
      : { algorithm: 'gzip', detail: argument };
  }
  const colon = argument.indexOf(':');
  if (colon === -1) return { algorithm: argument, detail: undefined };
  return { algorithm: argument.slice(0, colon), detail: argument.slice(colon + 1) };
}

interface ParsedDetail {
  level: number;
  workers: number | undefined;
  longDistance: boolean;
  error: string | undefined;
}

function parseDetail(
  algorithm: CompressionMethod,
  detail: string | undefined,
  runtime: CompressionRuntime,
): ParsedDetail {
  const result: ParsedDetail = {
    level: algorithm === 'none' ? 0 : LEVEL_RULES[algorithm].defaultLevel,
    workers: undefined,
    longDistance: false,
    error: undefined,
  };
  if (algorithm === 'zstd' && !runtime.zstd) {
    result.error = 'this build does not support compression with ZSTD';
  }
  if (detail === undefined) return result;

  const bare = cStrtol(detail);
  if (bare.end !== 0 && bare.end === detail.length) {
    result.level = toCInt(bare.value);
    return result;
  }

  let position = 0;
  for (;;) {
    let keywordEnd = position;
    while (keywordEnd < detail.length && detail[keywordEnd] !== ',' && detail[keywordEnd] !== '=')
      keywordEnd += 1;
    const keyword = detail.slice(position, keywordEnd);
    let value: string | undefined;
    let entryEnd = keywordEnd;
    if (detail[keywordEnd] === '=') {
      let valueEnd = keywordEnd + 1;
      while (valueEnd < detail.length && detail[valueEnd] !== ',') valueEnd += 1;
      value = detail.slice(keywordEnd + 1, valueEnd);
      entryEnd = valueEnd;
    }
    if (keyword.length === 0) {
      result.error = 'found empty string where a compression option was expected';
      break;
    }
    if (keyword === 'level') {
      result.level = expectInteger(keyword, value, result);
    } else if (keyword === 'workers') {
      result.workers = expectInteger(keyword, value, result);
    } else if (keyword === 'long') {
      result.longDistance = expectBoolean(keyword, value, result);
    } else {
      result.error = `unrecognized compression option: "${keyword}"`;
    }
    if (result.error !== undefined || entryEnd >= detail.length) break;
    position = entryEnd + 1;
  }
  return result;
}

function expectInteger(keyword: string, value: string | undefined, result: ParsedDetail): number {
  if (value === undefined) {
    result.error = `compression option "${keyword}" requires a value`;
    return -1;
  }
  const parsed = cStrtol(value);
  if (parsed.end === 0 || parsed.end !== value.length) {
    result.error = `value for compression option "${keyword}" must be an integer`;
    return -1;
  }
  return toCInt(parsed.value);
}

function expectBoolean(keyword: string, value: string | undefined, result: ParsedDetail): boolean {
  if (value === undefined) return true;
  const parsed = parsePostgresBoolean(value);
  if (parsed === undefined) {
    result.error = `value for compression option "${keyword}" must be a Boolean value`;
    return false;
  }
  return parsed;
}

function validate(algorithm: CompressionMethod, parsed: ParsedDetail): string | undefined {
  if (parsed.error !== undefined) return parsed.error;
  if (algorithm === 'none') {
    if (parsed.level !== 0) return 'compression algorithm "none" does not accept a compression level';
  } else {
    const rule = LEVEL_RULES[algorithm];
    if ((parsed.level < rule.min || parsed.level > rule.max) && parsed.level !== rule.defaultLevel) {
      return `compression algorithm "${algorithm}" expects a compression level between ${rule.min} and ${rule.max} (default at ${rule.defaultLevel})`;
    }
  }
  if (parsed.workers !== undefined && algorithm !== 'zstd') {
    return `compression algorithm "${algorithm}" does not accept a worker count`;
  }
  if (parsed.longDistance && algorithm !== 'zstd') {
    return `compression algorithm "${algorithm}" does not support long-distance mode`;
  }
  return undefined;
}

/** PostgreSQL's parse_bool: case-insensitive prefixes of true/false/yes/no, on/off (two letters at least), 1/0. */
export function parsePostgresBoolean(text: string): boolean | undefined {
  const value = text.toLowerCase();
  if (value.length === 0) return undefined;
  if ('true'.startsWith(value) || 'yes'.startsWith(value)) return true;
  if ('false'.startsWith(value) || 'no'.startsWith(value)) return false;
  if (value.length >= 2 && 'on'.startsWith(value)) return true;
  if (value.length >= 2 && 'off'.startsWith(value)) return false;
  if (value === '1') return true;
  if (value === '0') return false;
  return undefined;
}

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/**
 * C's strtol(text, &end, 10) on a 64-bit long: leading white space, an optional sign, decimal
 * digits; `end` is 0 when no digits were found; out-of-range values clamp to LONG_MIN/LONG_MAX.
 */
export function cStrtol(text: string): { value: bigint; end: number } {
  let position = 0;
  while (position < text.length && isCSpace(text[position]!)) position += 1;
  let negative = false;
  if (text[position] === '+' || text[position] === '-') {
    negative = text[position] === '-';
    position += 1;
  }
  const digitsStart = position;
  while (position < text.length && text[position]! >= '0' && text[position]! <= '9') position += 1;
  if (position === digitsStart) return { value: 0n, end: 0 };
  let value = BigInt(text.slice(digitsStart, position));
  if (negative) value = -value;
  if (value > INT64_MAX) value = INT64_MAX;
  if (value < INT64_MIN) value = INT64_MIN;
  return { value, end: position };
}

export function isCSpace(character: string): boolean {
  return (
    character === ' ' ||
    character === '\t' ||
    character === '\n' ||
    character === '\v' ||
    character === '\f' ||
    character === '\r'
  );
}

/** The `int` a C compiler on Linux keeps when a long is assigned to it: the low 32 bits. */
function toCInt(value: bigint): number {
  return Number(BigInt.asIntN(32, value));
}
