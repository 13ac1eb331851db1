import { ProtocolError } from './errors.js';

/** Segment file names and the arithmetic behind them (`xlog_internal.h`; spec §7.1). */

export const MIN_WAL_SEGMENT_SIZE = 1024 * 1024;
export const MAX_WAL_SEGMENT_SIZE = 1024 * 1024 * 1024;

export type WalCompression = 'none' | 'gzip' | 'lz4' | 'zstd';

export interface ParsedWalFileName {
  timeline: number;
  segmentNumber: bigint;
  /** Ends in '.partial': the segment was not complete when the receiver stopped. */
  partial: boolean;
  compression: WalCompression;
}

/** `IsValidWalSegSize`: a power of two from 1 MiB to 1 GiB. */
export function isValidWalSegmentSize(bytes: number): boolean {
  return (
    Number.isInteger(bytes) &&
    bytes >= MIN_WAL_SEGMENT_SIZE &&
    bytes <= MAX_WAL_SEGMENT_SIZE &&
    (bytes & (bytes - 1)) === 0
  );
}

function checkSegmentSize(segmentSize: number): bigint {
  if (!isValidWalSegmentSize(segmentSize)) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_WAL_SEGMENT_SIZE',
      `Invalid WAL segment size ${segmentSize}: it must be a power of two between 1 MB and 1 GB`,
    );
  }
  return BigInt(segmentSize);
}

function checkLsn(lsn: bigint): void {
  if (typeof lsn !== 'bigint' || lsn < 0n || lsn > 0xffffffffffffffffn) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_LSN',
      `Invalid LSN ${String(lsn)}: an LSN is an unsigned 64-bit bigint`,
    );
  }
}

function checkTimeline(timeline: number): void {
  if (!Number.isInteger(timeline) || timeline < 0 || timeline > 0xffffffff) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_TIMELINE',
      `Invalid timeline ${timeline}: a timeline is an unsigned 32-bit integer`,
    );
  }
}

/** `XLByteToSeg`: the segment holding the byte at `lsn`. */
export function segmentNumberOf(lsn: bigint, segmentSize: number): bigint {
  checkLsn(lsn);
  return lsn / checkSegmentSize(segmentSize);
}

/** `XLogSegNoOffsetToRecPtr(segno, 0)`: the LSN of a segment's first byte. */
export function segmentStartLsn(segmentNumber: bigint, segmentSize: number): bigint {
  const lsn = segmentNumber * checkSegmentSize(segmentSize);
  checkLsn(lsn);
  return lsn;
}

/** `XLogSegmentOffset`: the byte offset of `lsn` inside its segment. */
export function segmentOffsetOf(lsn: bigint, segmentSize: number): number {
  checkLsn(lsn);
  return Number(lsn & (checkSegmentSize(segmentSize) - 1n));
}

function hex8(value: number | bigint): string {
  return value.toString(16).toUpperCase().padStart(8, '0');
}

/**
 * `XLogFileName`: `%08X%08X%08X` of timeline, segno / segments-per-4GiB and segno % segments-per-4GiB,
 * so the middle part is the high 32 bits of the LSN whatever the segment size.
 */
export function walFileName(timeline: number, segmentNumber: bigint, segmentSize: number): string {
  checkTimeline(timeline);
  const segmentsPerId = 0x100000000n / checkSegmentSize(segmentSize);
  if (segmentNumber < 0n || segmentNumber / segmentsPerId > 0xffffffffn) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_VALUE',
      `Invalid WAL segment number ${segmentNumber} for ${segmentSize}-byte segments`,
    );
  }
  return `${hex8(timeline)}${hex8(segmentNumber / segmentsPerId)}${hex8(segmentNumber % segmentsPerId)}`;
}

const WAL_FILE_NAME_PATTERN = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.gz|\.lz4|\.zst)?(\.partial)?$/;
/** The suffix each compression adds to a segment's name, before `.partial` (`walmethods.c`). */
export const WAL_COMPRESSION_SUFFIX: Readonly<Record<WalCompression, string>> = {
  none: '',
  gzip: '.gz',
  lz4: '.lz4',
  zstd: '.zst',
};
const COMPRESSION_BY_SUFFIX = new Map(
  Object.entries(WAL_COMPRESSION_SUFFIX).map(([compression, suffix]) => [
    suffix,
    compression as WalCompression,
  ]),
);

/** The compression a segment name's suffix stands for ('' or undefined: none); undefined if unknown. */
export function walCompressionOfSuffix(suffix: string | undefined): WalCompression | undefined {
  return COMPRESSION_BY_SUFFIX.get(suffix ?? '');
}

/**
 * Recognises the names pg_receivewal writes: 24 uppercase hex digits, optionally '.gz', '.lz4' or
 * '.zst', optionally then '.partial'. Anything else (history files, '.tmp', lowercase, a low part
 * too large for the segment size) is not a segment: undefined.
 */
export function parseWalFileName(name: string, segmentSize: number): ParsedWalFileName | undefined {
  const segmentsPerId = 0x100000000n / checkSegmentSize(segmentSize);
  const match = WAL_FILE_NAME_PATTERN.exec(name);
  if (match === null) return undefined;
  const low = BigInt(`0x${match[3]}`);
  if (low >= segmentsPerId) return undefined;
  return {
    timeline: Number.parseInt(match[1]!, 16),
    segmentNumber: BigInt(`0x${match[2]}`) * segmentsPerId + low,
    partial: match[5] !== undefined,
    compression: walCompressionOfSuffix(match[4])!,
  };
}

/** `TLHistoryFileName`: '%08X.history'. */
export function historyFileName(timeline: number): string {
  checkTimeline(timeline);
  return `${hex8(timeline)}.history`;
}

const HISTORY_FILE_NAME = /^([0-9A-F]{8})\.history$/;

/** The timeline of a history file name ('%08X.history', `IsTLHistoryFileName`); undefined for any other name. */
export function parseHistoryFileName(name: string): number | undefined {
  const match = HISTORY_FILE_NAME.exec(name);
  return match === null ? undefined : Number.parseInt(match[1]!, 16);
}

const SIZE_SETTING_PATTERN = /^(\d+)\s*(B|kB|MB|GB|TB)?$/;
const UNIT_BYTES: Record<string, number> = {
  B: 1,
  kB: 1024,
  MB: 1024 ** 2,
  GB: 1024 ** 3,
  TB: 1024 ** 4,
};

/**
 * Parses the value of `SHOW wal_segment_size` ('16MB', '1GB', '1024kB', ...) into bytes and checks
 * it like pg_receivewal's `RetrieveWalSegSize`.
 */
export function parseWalSegmentSizeSetting(text: string): number {
  const match = SIZE_SETTING_PATTERN.exec(text);
  if (match === null) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_WAL_SEGMENT_SIZE',
      `WAL segment size ${JSON.stringify(text)} could not be parsed; expected a number and a unit like '16MB'`,
    );
  }
  const bytes = Number(match[1]) * UNIT_BYTES[match[2] ?? 'B']!;
  if (!isValidWalSegmentSize(bytes)) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_WAL_SEGMENT_SIZE',
      `WAL segment size must be a power of two between 1 MB and 1 GB, but the server reported ${JSON.stringify(text)}`,
    );
  }
  return bytes;
}
