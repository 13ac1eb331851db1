import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from './errors.js';
import { parseLsn } from './lsn.js';
import {
  historyFileName,
  isValidWalSegmentSize,
  parseHistoryFileName,
  parseWalFileName,
  parseWalSegmentSizeSetting,
  segmentNumberOf,
  segmentOffsetOf,
  segmentStartLsn,
  walFileName,
} from './wal-file-name.js';

const MB = 1024 * 1024;
const GB = 1024 * MB;

describe('segment sizes', () => {
  it.each([MB, 2 * MB, 16 * MB, 64 * MB, 512 * MB, GB])('%i is valid', (size) => {
    expect(isValidWalSegmentSize(size)).toBe(true);
  });
  it.each([0, -MB, MB / 2, 3 * MB, 2 * GB, 16 * MB + 1, 1.5, Number.NaN])('%d is not valid', (size) => {
    expect(isValidWalSegmentSize(size)).toBe(false);
  });
});

describe('segment arithmetic and file names (xlog_internal.h)', () => {
  it.each<[number, string, number, bigint, number, string]>([
    // timeline, LSN, segment size, segment number, offset, file name
    [1, '0/B00130', MB, 0xbn, 0x130, '00000001000000000000000B'],
    [1, '1/2A000000', 16 * MB, 0x12an, 0, '00000001000000010000002A'],
    [1, '0/16B3748', 16 * MB, 1n, 0x6b3748, '000000010000000000000001'],
    [2, '5/FFF00010', MB, 0x5fffn, 0x10, '0000000200000005 00000FFF'.replace(' ', '')],
    [1, '1/C0000000', GB, 7n, 0, '000000010000000100000003'],
    [0x1f, '1/FFFFFFFF', GB, 7n, GB - 1, '0000001F0000000100000003'],
    [0xffffffff, 'FFFFFFFF/FF000000', 16 * MB, 0xffffffffffn, 0, 'FFFFFFFFFFFFFFFF000000FF'],
  ])('TLI %i, LSN %s, %i-byte segments', (timeline, lsnText, size, segmentNumber, offset, name) => {
    const lsn = parseLsn(lsnText);
    expect(segmentNumberOf(lsn, size)).toBe(segmentNumber);
    expect(segmentOffsetOf(lsn, size)).toBe(offset);
    expect(segmentStartLsn(segmentNumber, size)).toBe(lsn - BigInt(offset));
    expect(walFileName(timeline, segmentNumber, size)).toBe(name);
    expect(parseWalFileName(name, size)).toEqual({
      timeline,
      segmentNumber,
      partial: false,
      compression: 'none',
    });
  });

  it('round-trips names for every size (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10 }).map((shift) => MB * 2 ** shift),
        fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }),
        fc.integer({ min: 1, max: 0xffffffff }),
        (size, lsn, timeline) => {
          const segmentNumber = segmentNumberOf(lsn, size);
          const name = walFileName(timeline, segmentNumber, size);
          expect(name).toMatch(/^[0-9A-F]{24}$/);
          expect(name.slice(8, 16)).toBe((lsn >> 32n).toString(16).toUpperCase().padStart(8, '0'));
          expect(parseWalFileName(`${name}.partial`, size)).toEqual({
            timeline,
            segmentNumber,
            partial: true,
            compression: 'none',
          });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses invalid arguments', () => {
    expect(() => walFileName(1, 0n, 3 * MB)).toThrow(ProtocolError);
    expect(() => walFileName(-1, 0n, MB)).toThrow(/timeline/);
    expect(() => walFileName(2 ** 32, 0n, MB)).toThrow(/timeline/);
    expect(() => walFileName(1, -1n, MB)).toThrow(/segment number/);
    expect(() => walFileName(1, 1n << 44n, MB)).toThrow(/segment number/);
    expect(() => segmentNumberOf(-1n, MB)).toThrow(/LSN/);
    expect(() => segmentOffsetOf(0n, 0)).toThrow(/power of two/);
    expect(() => segmentStartLsn(1n << 60n, GB)).toThrow(/LSN/);
  });
});

describe('parseWalFileName', () => {
  const base = '00000001000000010000002A';
  it.each<[string, boolean, string]>([
    [base, false, 'none'],
    [`${base}.partial`, true, 'none'],
    [`${base}.gz`, false, 'gzip'],
    [`${base}.gz.partial`, true, 'gzip'],
    [`${base}.lz4`, false, 'lz4'],
    [`${base}.lz4.partial`, true, 'lz4'],
    [`${base}.zst`, false, 'zstd'],
    [`${base}.zst.partial`, true, 'zstd'],
  ])('recognises %s', (name, partial, compression) => {
    expect(parseWalFileName(name, 16 * MB)).toEqual({
      timeline: 1,
      segmentNumber: 0x12an,
      partial,
      compression,
    });
  });

  it.each([
    base.toLowerCase(),
    `${base}.partial.gz`,
    `${base}.tmp`,
    `${base}.partial.tmp`,
    `${base}.gz.tmp`,
    `${base}.bz2`,
    `${base}.00000028.backup`,
    '00000001.history',
    `${base}X`,
    base.slice(1),
    ` ${base}`,
    '',
  ])('ignores %j', (name) => {
    expect(parseWalFileName(name, 16 * MB)).toBeUndefined();
  });

  it('ignores a low part too large for the segment size', () => {
    expect(parseWalFileName('000000010000000000000100', 16 * MB)).toBeUndefined();
    expect(parseWalFileName('000000010000000000000100', MB)?.segmentNumber).toBe(0x100n);
    expect(parseWalFileName('000000010000000000000004', GB)).toBeUndefined();
  });
});

describe('historyFileName', () => {
  it('formats %08X.history', () => {
    expect(historyFileName(2)).toBe('00000002.history');
    expect(historyFileName(0xab)).toBe('000000AB.history');
    expect(() => historyFileName(1.5)).toThrow(ProtocolError);
  });
});

describe('parseHistoryFileName', () => {
  it('reads the timeline of %08X.history, and nothing else', () => {
    expect(parseHistoryFileName('00000002.history')).toBe(2);
    expect(parseHistoryFileName(historyFileName(0xab))).toBe(0xab);
    for (const name of ['00000002.history.tmp', '0000000a.history', '2.history', '000000010000000000000002'])
      expect(parseHistoryFileName(name), name).toBeUndefined();
  });
});

describe('parseWalSegmentSizeSetting', () => {
  it.each<[string, number]>([
    ['16MB', 16 * MB],
    ['1MB', MB],
    ['1GB', GB],
    ['1024kB', MB],
    ['64MB', 64 * MB],
    ['16777216', 16 * MB],
    ['16777216B', 16 * MB],
  ])('%s is %i bytes', (text, bytes) => {
    expect(parseWalSegmentSizeSetting(text)).toBe(bytes);
  });

  it.each(['', '16', '16mb', '16 XB', 'MB', '-16MB', '16MB ', '2GB', '3MB', '512kB', '1TB', '1.5GB'])(
    'rejects %j',
    (text) => {
      let caught: unknown;
      try {
        parseWalSegmentSizeSetting(text);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ProtocolError);
      expect((caught as ProtocolError).code).toBe('WAL_ERR_PROTOCOL_INVALID_WAL_SEGMENT_SIZE');
      expect((caught as ProtocolError).message).toContain(JSON.stringify(text));
    },
  );
});
