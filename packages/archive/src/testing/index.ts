/**
 * Test helpers of @wal/archive (subpath `@wal/archive/testing`): archive contents made without a
 * server, for the archive's own tests and the CLI's.
 */
import { encodePageHeader, PageInfo, pageMagicForVersion } from '@wal/protocol/wal-format';

/** The segment size of `segment`'s WAL: 1 MiB, the smallest PostgreSQL allows. */
export const SEGMENT_SIZE = 1024 * 1024;

/**
 * The first `length` bytes of segment `segmentNumber` on timeline 1: a long page header at its
 * start (system identifier 7, PostgreSQL 16's magic), then sparse varied bytes. The same number
 * always gives the same bytes.
 */
export function segment(segmentNumber: number, length = SEGMENT_SIZE): Buffer {
  const data = Buffer.alloc(SEGMENT_SIZE);
  for (let index = 40; index < data.length; index += 89) data[index] = index % 251;
  encodePageHeader(data, 0, {
    magic: pageMagicForVersion(16),
    info: PageInfo.LONG_HEADER,
    timeline: 1,
    pageAddress: BigInt(segmentNumber * SEGMENT_SIZE),
    remainingLength: 0,
    long: { systemId: 7n, segmentSize: SEGMENT_SIZE, blockSize: 8192 },
  });
  return data.subarray(0, length);
}
