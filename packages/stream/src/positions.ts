import { segmentOffsetOf } from '@wal/protocol';

/** The start of the segment holding `lsn`: pg_receivewal streams from there (`startpos -= startpos % WalSegSz`). */
export function segmentStartOf(lsn: bigint, segmentSize: number): bigint {
  return lsn - BigInt(segmentOffsetOf(lsn, segmentSize));
}

/** The first segment boundary strictly after `lsn`. */
export function nextSegmentBoundary(lsn: bigint, segmentSize: number): bigint {
  return segmentStartOf(lsn, segmentSize) + BigInt(segmentSize);
}

/**
 * How many bytes of a WAL message starting at `startLsn` to keep when streaming must stop at
 * `endLsn`. pg_receivewal (ProcessWALDataMsg) checks the stop condition each time a segment is
 * finished inside a message and drops the rest of the message then; without a boundary crossing
 * the whole message is kept. Returns `length` when nothing is dropped.
 */
export function lengthToKeepBeforeStop(
  startLsn: bigint,
  length: number,
  endLsn: bigint | undefined,
  segmentSize: number,
): number {
  if (endLsn === undefined) return length;
  const end = startLsn + BigInt(length);
  const size = BigInt(segmentSize);
  for (let boundary = nextSegmentBoundary(startLsn, segmentSize); boundary < end; boundary += size) {
    if (endLsn < boundary) return Number(boundary - startLsn);
  }
  return length;
}
