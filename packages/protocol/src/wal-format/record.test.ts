import { describe, expect, it } from 'vitest';
import { BLOCK_ID_DATA_LONG, BLOCK_ID_DATA_SHORT, RM_XLOG_ID, XLOG_NOOP } from './constants.js';
import {
  buildMainDataRecord,
  computeRecordCrc,
  decodeRecordHeader,
  encodeRecordHeader,
  mainDataRecordLength,
  maximumAlign,
} from './record.js';

function naiveCrc32c(parts: Uint8Array[]): number {
  let crc = 0xffffffff;
  for (const part of parts) {
    for (const byte of part) {
      crc ^= byte;
      for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    }
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('records', () => {
  it('builds an XLOG NOOP with a short main-data block and the PostgreSQL CRC order', () => {
    const data = Buffer.from('hello, wal');
    const record = buildMainDataRecord({ previous: 0x1000028n, data });
    expect(record.length).toBe(24 + 2 + data.length);
    const header = decodeRecordHeader(record);
    expect(header).toMatchObject({
      totalLength: 36,
      transactionId: 0,
      previous: 0x1000028n,
      info: XLOG_NOOP,
      resourceManagerId: RM_XLOG_ID,
    });
    expect(record[24]).toBe(BLOCK_ID_DATA_SHORT);
    expect(record[25]).toBe(data.length);
    expect(record.subarray(26).toString()).toBe('hello, wal');
    // Data after the header first, then the header up to xl_crc (xlogreader.c ValidXLogRecord).
    expect(header.crc).toBe(naiveCrc32c([record.subarray(24), record.subarray(0, 20)]));
    expect(computeRecordCrc(record)).toBe(header.crc);
  });

  it('uses the long main-data block above 255 bytes', () => {
    const record = buildMainDataRecord({ previous: 0n, data: Buffer.alloc(300, 7) });
    expect(record[24]).toBe(BLOCK_ID_DATA_LONG);
    expect(record.readUInt32LE(25)).toBe(300);
    expect(mainDataRecordLength(300)).toBe(24 + 5 + 300);
    expect(mainDataRecordLength(255)).toBe(24 + 2 + 255);
  });

  it('round-trips a header and rejects impossible lengths', () => {
    const target = Buffer.alloc(24);
    const header = {
      totalLength: 99,
      transactionId: 5,
      previous: 0xabcdefn,
      info: 0x40,
      resourceManagerId: 0,
      crc: 0xdeadbeef,
    };
    encodeRecordHeader(target, 0, header);
    expect(decodeRecordHeader(target)).toEqual(header);
    expect(() => decodeRecordHeader(Buffer.alloc(10))).toThrow(/needs 24 bytes at offset 0, got 10/);
    expect(() => computeRecordCrc(target)).toThrow(/xl_tot_len 99 does not fit: 24 bytes available/);
  });

  it('aligns to 8 bytes beyond 32-bit values', () => {
    expect([0, 1, 7, 8, 9, 2 ** 33 + 1].map(maximumAlign)).toEqual([0, 8, 8, 8, 16, 2 ** 33 + 8]);
  });
});
