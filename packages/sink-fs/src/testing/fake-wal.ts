/**
 * Deterministic stand-in for WAL bytes, for tests of the sink (no server needed): the same LSN always
 * yields the same byte, every segment starts with a long page header carrying the system
 * identifier and segment size (what the directory guard reads), and half of each 8 KiB page is
 * zeros so that compression has something to do.
 */
export interface FakeWalOptions {
  systemId: bigint;
  segmentSize: number;
  timeline?: number;
}

const PAGE_SIZE = 8192;
const XLOG_PAGE_MAGIC_PG15 = 0xd110;
const XLP_LONG_HEADER = 0x0002;

export function fakeWal(startLsn: bigint, length: number, options: FakeWalOptions): Buffer {
  const output = Buffer.alloc(length);
  const segmentSize = BigInt(options.segmentSize);
  // Numbers, not bigints, per byte: test LSNs stay far below 2^53.
  const start = Number(startLsn);
  for (let index = 0; index < length; index += 1) {
    const lsn = start + index;
    if (lsn % PAGE_SIZE < PAGE_SIZE / 2) {
      // A cheap integer hash of the position.
      let value = (lsn % 0x1_0000_0000) ^ Math.floor(lsn / 0x1_0000_0000);
      value = Math.imul(value ^ (value >>> 16), 0x45d9f3b);
      value = Math.imul(value ^ (value >>> 16), 0x45d9f3b);
      output[index] = (value ^ (value >>> 16)) & 0xff;
    }
  }
  // Overlay the long page header of every segment whose first 40 bytes meet the range, so that
  // any split of a range into pieces gives the same bytes.
  const end = startLsn + BigInt(length);
  for (
    let segmentStart = (startLsn / segmentSize) * segmentSize;
    segmentStart < end;
    segmentStart += segmentSize
  ) {
    const header = longPageHeader(segmentStart, options);
    const from = startLsn > segmentStart ? startLsn - segmentStart : 0n;
    const to = end < segmentStart + BigInt(header.length) ? end - segmentStart : BigInt(header.length);
    if (from >= to) continue;
    header.copy(output, Number(segmentStart + from - startLsn), Number(from), Number(to));
  }
  return output;
}

export function longPageHeader(segmentStartLsn: bigint, options: FakeWalOptions): Buffer {
  const header = Buffer.alloc(40);
  header.writeUInt16LE(XLOG_PAGE_MAGIC_PG15, 0);
  header.writeUInt16LE(XLP_LONG_HEADER, 2);
  header.writeUInt32LE(options.timeline ?? 1, 4);
  header.writeBigUInt64LE(segmentStartLsn, 8);
  header.writeBigUInt64LE(options.systemId, 24);
  header.writeUInt32LE(options.segmentSize, 32);
  header.writeUInt32LE(PAGE_SIZE, 36);
  return header;
}
