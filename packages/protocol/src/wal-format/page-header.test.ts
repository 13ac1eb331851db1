import { describe, expect, it } from 'vitest';
import { PageInfo } from './constants.js';
import { WalFormatError } from './errors.js';
import {
  decodePageHeader,
  encodePageHeader,
  majorVersionForPageMagic,
  pageHeaderSize,
  pageMagicForVersion,
} from './page-header.js';

describe('page headers', () => {
  it('decodes the first page header observed from PG15 (magic D110, info 6, tli 1, 0/700000, 1 MB)', () => {
    // Hand-built from the spec's trace: little-endian fields at their xlog_internal.h offsets.
    const bytes = Buffer.alloc(40);
    bytes.set([0x10, 0xd1, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00], 0);
    bytes.set([0x00, 0x00, 0x70, 0x00, 0x00, 0x00, 0x00, 0x00], 8);
    bytes.set([0xec, 0x55, 0x82, 0x3f, 0x2f, 0xc1, 0x01, 0x6b], 24);
    bytes.set([0x00, 0x00, 0x10, 0x00, 0x00, 0x20, 0x00, 0x00], 32);
    expect(decodePageHeader(bytes)).toEqual({
      magic: 0xd110,
      info: PageInfo.LONG_HEADER | PageInfo.BACKUP_REMOVABLE,
      timeline: 1,
      pageAddress: 0x700000n,
      remainingLength: 0,
      long: { systemId: 0x6b01c12f3f8255ecn, segmentSize: 1024 * 1024, blockSize: 8192 },
    });
  });

  it('round-trips short and long headers', () => {
    const short = {
      magic: 0xd116,
      info: PageInfo.FIRST_IS_CONTRECORD,
      timeline: 7,
      pageAddress: 0x16b374c000n,
      remainingLength: 1234,
    };
    const target = Buffer.alloc(64, 0xee);
    expect(encodePageHeader(target, 8, short)).toBe(24);
    expect(decodePageHeader(target, 8)).toEqual(short);
    expect(target.readUInt32LE(8 + 20)).toBe(0);
    const long = {
      magic: 0xd118,
      info: PageInfo.LONG_HEADER,
      timeline: 2,
      pageAddress: 0x1000000n,
      remainingLength: 0,
      long: { systemId: 7710807530998405100n, segmentSize: 16 * 1024 * 1024, blockSize: 8192 },
    };
    expect(encodePageHeader(target, 0, long)).toBe(40);
    expect(decodePageHeader(target.subarray(0, 40))).toEqual(long);
    expect(pageHeaderSize(long.info)).toBe(40);
    expect(pageHeaderSize(short.info)).toBe(24);
  });

  it('refuses a header whose long fields contradict its info flag', () => {
    const base = { magic: 0xd110, timeline: 1, pageAddress: 0n, remainingLength: 0 };
    expect(() => encodePageHeader(Buffer.alloc(40), 0, { ...base, info: PageInfo.LONG_HEADER })).toThrow(
      /XLP_LONG_HEADER in info but no long fields/,
    );
    expect(() =>
      encodePageHeader(Buffer.alloc(40), 0, {
        ...base,
        info: 0,
        long: { systemId: 1n, segmentSize: 1, blockSize: 1 },
      }),
    ).toThrow(/info lacks XLP_LONG_HEADER/);
  });

  it('reports too-short buffers with sizes', () => {
    expect(() => decodePageHeader(Buffer.alloc(23))).toThrow(/needs at least 24 bytes at offset 0, got 23/);
    const longInfo = Buffer.alloc(30);
    longInfo.writeUInt16LE(PageInfo.LONG_HEADER, 2);
    expect(() => decodePageHeader(longInfo)).toThrow(
      /long WAL page header needs 40 bytes at offset 0, got 30/,
    );
    expect(() =>
      encodePageHeader(Buffer.alloc(10), 0, {
        magic: 1,
        info: 0,
        timeline: 1,
        pageAddress: 0n,
        remainingLength: 0,
      }),
    ).toThrow(WalFormatError);
  });

  it('maps versions to XLOG_PAGE_MAGIC and back', () => {
    expect([14, 15, 16, 17, 18, 19].map(pageMagicForVersion)).toEqual([
      0xd10d, 0xd110, 0xd113, 0xd116, 0xd118, 0xd121,
    ]);
    expect(pageMagicForVersion(150008)).toBe(0xd110);
    expect(pageMagicForVersion(180001)).toBe(0xd118);
    expect(majorVersionForPageMagic(0xd113)).toBe(16);
    expect(majorVersionForPageMagic(0x1234)).toBeUndefined();
    expect(() => pageMagicForVersion(13)).toThrow(
      expect.objectContaining({ code: 'WAL_ERR_WAL_FORMAT_UNKNOWN_VERSION' }),
    );
  });
});
