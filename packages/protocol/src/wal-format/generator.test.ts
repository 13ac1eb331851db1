import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createWalGenerator, generateWal, type WalGenerator, type WalGeneratorOptions } from './generator.js';

const MB = 1024 * 1024;
const PAGE = 8192;

interface CheckedRecord {
  lsn: bigint;
  totalLength: number;
  previous: bigint;
}

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

/**
 * An independent, deliberately plain WAL reader (the rules of xlogreader.c as the spec states them):
 * walks pages of `bytes` (which starts at the segment start `startLsn`), checks every page header,
 * reassembles records across pages, checks each CRC and the xl_prev chain.
 */
function readWal(
  bytes: Buffer,
  startLsn: bigint,
  expected: { segmentSize: number; magic: number; systemId: bigint; timelineOf: (pageLsn: bigint) => number },
): { records: CheckedRecord[]; continuedPages: number; segmentStartsInsideRecord: number } {
  const records: CheckedRecord[] = [];
  let continuedPages = 0;
  let segmentStartsInsideRecord = 0;
  const checkPage = (offset: number, remaining: number): number => {
    const lsn = startLsn + BigInt(offset);
    const isSegmentStart = lsn % BigInt(expected.segmentSize) === 0n;
    expect(bytes.readUInt16LE(offset), `magic at ${lsn}`).toBe(expected.magic);
    const info = bytes.readUInt16LE(offset + 2);
    expect(info & ~0x7, `info bits at ${lsn}`).toBe(0);
    expect(Boolean(info & 2), `long flag at ${lsn}`).toBe(isSegmentStart);
    expect(Boolean(info & 1), `contrecord flag at ${lsn}`).toBe(remaining > 0);
    expect(bytes.readUInt32LE(offset + 4), `tli at ${lsn}`).toBe(expected.timelineOf(lsn));
    expect(bytes.readBigUInt64LE(offset + 8), `pageaddr at ${lsn}`).toBe(lsn);
    expect(bytes.readUInt32LE(offset + 16), `rem_len at ${lsn}`).toBe(remaining);
    expect(bytes.readUInt32LE(offset + 20), `header padding at ${lsn}`).toBe(0);
    if (remaining > 0) continuedPages++;
    if (isSegmentStart) {
      if (remaining > 0) segmentStartsInsideRecord++;
      expect(bytes.readBigUInt64LE(offset + 24)).toBe(expected.systemId);
      expect(bytes.readUInt32LE(offset + 32)).toBe(expected.segmentSize);
      expect(bytes.readUInt32LE(offset + 36)).toBe(PAGE);
      return 40;
    }
    return 24;
  };

  let position = checkPage(0, bytes.readUInt32LE(16));
  // Skip the tail of a record begun before the buffer, as pg_waldump's XLogFindNextRecord does.
  let skip = bytes.readUInt32LE(16);
  while (skip > 0) {
    const take = Math.min(skip, PAGE - (position % PAGE));
    skip -= take;
    position += take;
    if (skip > 0) position += checkPage(position, skip);
  }
  position = Math.ceil(position / 8) * 8;
  let previous: bigint | undefined;
  while (position < bytes.length) {
    if (position % PAGE === 0) position += checkPage(position, 0);
    const totalLength = bytes.readUInt32LE(position);
    if (totalLength === 0) break;
    const lsn = startLsn + BigInt(position);
    const pieces: Buffer[] = [];
    let remaining = totalLength;
    let complete = true;
    while (remaining > 0) {
      if (position >= bytes.length) {
        complete = false;
        break;
      }
      if (position % PAGE === 0) position += checkPage(position, remaining);
      const take = Math.min(remaining, PAGE - (position % PAGE));
      pieces.push(bytes.subarray(position, position + take));
      remaining -= take;
      position += take;
    }
    if (!complete) break;
    const record = Buffer.concat(pieces);
    expect(record[17], `rmid at ${lsn}`).toBe(0);
    expect(record[16], `info at ${lsn}`).toBe(0x20);
    expect(record.readUInt32LE(20), `crc at ${lsn}`).toBe(
      naiveCrc32c([record.subarray(24), record.subarray(0, 20)]),
    );
    const dataLength = record[24] === 255 ? record[25]! : record.readUInt32LE(25);
    expect(24 + (record[24] === 255 ? 2 : 5) + dataLength).toBe(totalLength);
    expect(record.readBigUInt64LE(totalLength - 8), 'payload ends with the record LSN').toBe(lsn);
    const recordPrevious = record.readBigUInt64LE(8);
    if (previous !== undefined) expect(recordPrevious, `xl_prev at ${lsn}`).toBe(previous);
    records.push({ lsn, totalLength, previous: recordPrevious });
    previous = lsn;
    const aligned = Math.ceil(position / 8) * 8;
    expect(
      bytes.subarray(position, aligned).every((byte) => byte === 0),
      `padding after ${lsn}`,
    ).toBe(true);
    position = aligned;
  }
  return { records, continuedPages, segmentStartsInsideRecord };
}

const base: WalGeneratorOptions = {
  seed: 42,
  segmentSize: MB,
  timeline: 1,
  systemId: 7710807530998405100n,
  serverVersion: 15,
};

describe('WAL generator', () => {
  it('produces valid WAL over several segments, with records crossing pages and segments', () => {
    const generator = createWalGenerator(base);
    const bytes = generator.read(0x100000n, 0x500000n);
    const result = readWal(bytes, 0x100000n, {
      segmentSize: MB,
      magic: 0xd110,
      systemId: base.systemId,
      timelineOf: () => 1,
    });
    expect(result.records.length).toBeGreaterThan(1000);
    expect(result.records[0]).toEqual({ lsn: 0x100028n, totalLength: expect.any(Number), previous: 0n });
    expect(result.continuedPages).toBeGreaterThan(100);
    expect(result.segmentStartsInsideRecord).toBeGreaterThan(0);
    expect(result.records.some((record) => record.totalLength > 2 * PAGE)).toBe(true);
    const listed = generator.recordsBetween(0x100000n, 0x500000n);
    // The reader drops a last record that runs past the buffer; the listing includes it.
    expect(listed.length - result.records.length).toBeLessThanOrEqual(1);
    expect(listed.slice(0, result.records.length)).toEqual(
      result.records.map(({ lsn, totalLength }) => ({ lsn, totalLength })),
    );
  });

  it('sets XLP_BKP_REMOVABLE on 14..18 pages and not on 19', () => {
    for (const [serverVersion, info] of [
      [14, 6],
      [18, 6],
      [19, 2],
    ] as const) {
      const generator = createWalGenerator({ ...base, serverVersion });
      expect(generator.segmentBytes(1n).readUInt16LE(2)).toBe(info);
    }
  });

  it('gives the same bytes for an LSN whatever range or order it is read in', () => {
    const first = createWalGenerator(base);
    const second = createWalGenerator(base);
    const whole = Buffer.from(first.read(0x100000n, 0x400000n));
    // Read backwards, in odd pieces, from a fresh generator that must walk forward on its own.
    const pieces: Buffer[] = [];
    let end = 0x400000n;
    for (const size of [70_001n, 1_000_000n, 13n, 0x100000n]) {
      pieces.unshift(Buffer.from(second.read(end - size, end)));
      end -= size;
    }
    pieces.unshift(Buffer.from(second.read(0x100000n, end)));
    expect(Buffer.concat(pieces).equals(whole)).toBe(true);
    expect(
      generateWal({ ...base, originLsn: 0x100000n, startLsn: 0x2ffff0n, endLsn: 0x300100n }).equals(
        whole.subarray(0x1ffff0, 0x200100),
      ),
    ).toBe(true);
    expect(generateWal({ ...base, startLsn: 0x300000n }).equals(second.segmentBytes(3n))).toBe(false);
    expect(
      generateWal({ ...base, originLsn: 0x100000n, startLsn: 0x300000n }).equals(
        whole.subarray(0x200000, 0x300000),
      ),
    ).toBe(true);
  });

  it('reads any range of a fresh generator as the same bytes as the whole (property)', () => {
    const reference = createWalGenerator(base);
    const whole = Buffer.from(reference.read(0x100000n, 0x600000n));
    fc.assert(
      fc.property(fc.nat(0x4fffff), fc.nat(0x180000), fc.nat(3), (start, length, warmups) => {
        const generator = createWalGenerator(base);
        // Touch a few other segments first so cached states and buffers are in varied shapes.
        for (let index = 0; index < warmups; index++) generator.segmentBytes(BigInt(5 - index));
        const from = 0x100000n + BigInt(start);
        const to = from + BigInt(Math.min(length, 0x4fffff - start));
        expect(generator.read(from, to).equals(whole.subarray(start, start + Number(to - from)))).toBe(true);
      }),
      { numRuns: 25 },
    );
  });

  it('differs with the seed and the timeline', () => {
    const a = createWalGenerator(base).segmentBytes(1n);
    expect(
      createWalGenerator({ ...base, seed: 43 })
        .segmentBytes(1n)
        .equals(a),
    ).toBe(false);
    expect(
      createWalGenerator({ ...base, timeline: 2 })
        .segmentBytes(1n)
        .subarray(40)
        .equals(a.subarray(40)),
    ).toBe(false);
  });

  it('zeroes a segment file after the end of WAL', () => {
    const generator = createWalGenerator(base);
    const file = generator.segmentFile(2n, { endLsn: 0x280000n });
    expect(file.length).toBe(MB);
    expect(file.subarray(0, 0x80000).equals(generator.segmentBytes(2n).subarray(0, 0x80000))).toBe(true);
    expect(file.subarray(0x80000).every((byte) => byte === 0)).toBe(true);
    expect(generator.segmentFile(2n)).toBe(generator.segmentBytes(2n));
  });

  it('continues a parent timeline from a record start, keeping the parent page header', () => {
    const parent = createWalGenerator(base);
    const switchLsn = parent.recordStartAtOrAfter(0x2a0123n);
    expect(parent.recordsBetween(0x2a0000n, 0x2b0000n).map((record) => record.lsn)).toContain(switchLsn);
    const child = createWalGenerator({ ...base, timeline: 2, parent: { generator: parent, switchLsn } });
    const childBytes = child.read(0x200000n, 0x400000n);
    const parentBytes = parent.read(0x200000n, switchLsn);
    expect(childBytes.subarray(0, parentBytes.length).equals(parentBytes)).toBe(true);
    const switchPage = switchLsn - (switchLsn % BigInt(PAGE));
    const result = readWal(Buffer.from(childBytes), 0x200000n, {
      segmentSize: MB,
      magic: 0xd110,
      systemId: base.systemId,
      timelineOf: (page) => (page <= switchPage ? 1 : 2),
    });
    expect(result.records.some((record) => record.lsn === switchLsn)).toBe(true);
    expect(child.recordBefore(switchLsn)).toBe(parent.recordBefore(switchLsn));
    expect(() =>
      createWalGenerator({ ...base, timeline: 2, parent: { generator: parent, switchLsn: switchLsn + 8n } }),
    ).toThrow(/not where a record of the parent timeline starts/);
    expect(() =>
      createWalGenerator({ ...base, timeline: 1, parent: { generator: parent, switchLsn } }),
    ).toThrow(/greater than its parent's 1/);
  });

  it('rejects bad options and ranges with coded errors', () => {
    const cases: [Partial<WalGeneratorOptions>, RegExp][] = [
      [{ segmentSize: 3 * MB }, /power of two between 1 MiB and 1 GiB, got 3145728/],
      [{ segmentSize: 512 * 1024 }, /power of two/],
      [{ timeline: 0 }, /Timeline must be an integer from 1/],
      [{ seed: 1.5 }, /seed must be an integer/],
      [{ systemId: -1n }, /fit in 64 bits/],
      [{ serverVersion: 12 }, /No known XLOG_PAGE_MAGIC for server version 12/],
      [{ serverVersion: undefined }, /pageMagic or a serverVersion/],
      [{ originLsn: 0x100010n }, /originLsn must be a segment start/],
    ];
    for (const [override, message] of cases) {
      expect(() => createWalGenerator({ ...base, ...override })).toThrow(message);
    }
    const generator: WalGenerator = createWalGenerator(base);
    expect(() => generator.read(0x0n, 0x10n)).toThrow(
      expect.objectContaining({ code: 'WAL_ERR_WAL_FORMAT_RANGE' }),
    );
    expect(() => generator.read(0x200000n, 0x100000n)).toThrow(/before its start/);
    expect(() => generator.segmentBytes(0n)).toThrow(/before the generated WAL/);
  });
});
