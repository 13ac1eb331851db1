import { walFileName } from '@wal/protocol';
import { createWalGenerator } from '@wal/protocol/wal-format';
import { describe, expect, it } from 'vitest';
import { WalChecker } from './wal-checker.js';

/**
 * The checker as a receiver uses it: one stream of WAL across segments, in chunks of any size
 * (splitting page headers, record headers and alignment padding), must read exactly as it reads
 * whole segments.
 */
const MB = 1024 * 1024;
const wal = createWalGenerator({ seed: 11, segmentSize: MB, timeline: 1, systemId: 99n, serverVersion: 18 });
const stream = wal.read(BigInt(MB), 4n * BigInt(MB));

function chunked(data: Buffer, seed: number): Buffer[] {
  const chunks: Buffer[] = [];
  let state = seed;
  for (let offset = 0; offset < data.length; ) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const size = state % 7 === 0 ? 1 + (state % 45) : 1 + (state % 20_000);
    chunks.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

function check(data: Buffer, seed: number) {
  const checker = new WalChecker({ segmentSize: MB });
  checker.beginFile({ name: walFileName(1, 1n, MB), timeline: 1, startLsn: BigInt(MB), partial: false });
  for (const chunk of chunked(data, seed)) checker.feed(chunk);
  return { problems: checker.firstProblem === undefined ? [] : [checker.firstProblem], checker };
}

describe('WalChecker fed in chunks of any size', () => {
  it('finds nothing wrong in sound WAL and ends at the last record', () => {
    const records = wal.recordsBetween(BigInt(MB), 4n * BigInt(MB));
    // The last record that ends inside the stream: the one after it continues past its end.
    const last = records
      .filter((record) => record.lsn + BigInt(record.totalLength) <= 4n * BigInt(MB))
      .at(-1)!;
    for (const seed of [1, 2, 3, 4, 5]) {
      const { problems, checker } = check(stream, seed);
      expect(problems, `seed ${seed}`).toEqual([]);
      expect(checker.lastGoodRecordEnd).toBe(last.lsn + BigInt(last.totalLength));
    }
  });

  it('finds a flipped bit in a record, a page header and a continuation, wherever chunks end', () => {
    const record = wal.recordsBetween(2n * BigInt(MB) + 12_345n, 3n * BigInt(MB))[3]!;
    const cases: [number, string][] = [
      [Number(record.lsn) - MB + 26, 'record-crc'],
      [MB + 9 * 8192 + 8, 'page-header'],
      [2 * MB + 0, 'page-header'],
    ];
    for (const [offset, kind] of cases) {
      const broken = Buffer.from(stream);
      broken.writeUInt8(broken.readUInt8(offset) ^ 0x40, offset);
      for (const seed of [7, 8, 9]) {
        const { problems } = check(broken, seed);
        expect(
          problems.map((problem) => problem.kind),
          `${kind} at ${offset}, seed ${seed}`,
        ).toEqual([kind]);
      }
    }
  });

  it('reads a stream that begins inside a page (a new timeline at its switch point) from the next page on', () => {
    const start = BigInt(MB) + 5n * 8192n + 1000n;
    const checker = new WalChecker({ segmentSize: MB });
    checker.beginFile({ name: walFileName(1, 1n, MB), timeline: 1, startLsn: start, partial: false });
    for (const chunk of chunked(stream.subarray(Number(start) - MB), 4)) checker.feed(chunk);
    expect(checker.firstProblem).toBeUndefined();
    expect(checker.lastGoodRecordEnd).toBeGreaterThan(start);
  });
});
