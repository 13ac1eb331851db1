import { afterEach, describe, expect, it } from 'vitest';
import {
  checkDirectory,
  cleanUp,
  MEGABYTE,
  makeTarget,
  receiveInto,
  segmentName,
  startServer,
} from './harness.js';

afterEach(cleanUp);

/**
 * Happy path (spec §5.6 scenario 1, 9): from an empty directory the receiver starts at the segment of
 * IDENTIFY_SYSTEM's position (segment 1), stores every segment the server sends — messages crossing
 * segment boundaries included — and stops at endpos with the last segment `.partial`, padded.
 */
describe.each([
  // 64 MB: two boundaries, so the run stays short on two cores; 1 and 16 MB: the default 3.5 segments.
  { segmentSizeMb: 1, segments: 3n },
  { segmentSizeMb: 16, segments: 3n },
  { segmentSizeMb: 64, segments: 2n },
])('happy path with $segmentSizeMb MB segments', ({ segmentSizeMb, segments }) => {
  it('stores the server bytes: complete segments renamed, the last one .partial and zero padded', async () => {
    const segmentSize = segmentSizeMb * MEGABYTE;
    const segment = BigInt(segmentSize);
    // WAL from segment 1 to half of segment `segments + 1`.
    const flushLsn = segment * (1n + segments) + segment / 2n;
    const server = await startServer('happy', {
      segmentSizeMb: String(segmentSizeMb),
      flushLsn: `${(flushLsn >> 32n).toString(16)}/${(flushLsn & 0xffffffffn).toString(16)}`,
    });
    const { directory } = makeTarget();
    const endLsn = flushLsn - 1n;
    const run = await receiveInto(server, directory, { endLsn }, { limitMs: 60_000 });

    expect(run.error).toBeUndefined();
    expect(run.timedOut).toBe(false);
    expect(run.events.at(-1)).toMatchObject({
      type: 'stopped',
      reason: 'endpos',
      lsn: flushLsn,
      timeline: 1,
    });
    expect(run.events.filter((event) => event.type === 'segment-finished').map((event) => event.lsn)).toEqual(
      Array.from({ length: Number(segments) }, (_, index) => segment * BigInt(index + 2)),
    );
    const report = checkDirectory(directory, server);
    expect(report.problems).toEqual([]);
    const expectedNames = [
      ...Array.from({ length: Number(segments) }, (_, index) =>
        segmentName(1, BigInt(index + 1), segmentSize),
      ),
      segmentName(1, segments + 1n, segmentSize, true),
    ];
    expect(report.segments.map((stored) => stored.name)).toEqual(expectedNames);
    // The partial holds exactly the WAL up to the flush position (the rest is padding).
    const generator = server.model.timeline(1)!.generator;
    const partialData = generator.segmentFile(segments + 1n, { endLsn: flushLsn });
    const lastData = report.segments.at(-1)!.dataLength;
    expect(lastData).toBeLessThanOrEqual(segmentSize / 2);
    expect(partialData.subarray(lastData).every((byte) => byte === 0)).toBe(true);
    expect(server.errors).toEqual([]);
  }, 90_000);
});
