import { describe, expect, it } from 'vitest';
import { explainRemovedWal, SlotInvalidatedError } from './slot-invalidation.js';

/**
 * The verdict on a 58P01 from what READ_REPLICATION_SLOT answers. A real PostgreSQL 15-17 gives
 * both answers (slot-invalidation.integration.test.ts), but which one depends on whether a status
 * update reached the walsender before the error: the race is fixed here, on the answers alone.
 */
const MEGABYTE = 1024n * 1024n;
const resume = { lsn: 3n * MEGABYTE, source: 'sink' as const };
const removed = Object.assign(
  new Error('requested WAL segment 000000010000000000000003 has already been removed'),
  {
    sqlState: '58P01',
  },
);

function diagnose(restartLsn: bigint | null, segmentSize: 'known' | 'unknown' = 'known') {
  return explainRemovedWal(removed, {
    slot: 'kept',
    serverVersion: 170000,
    resume,
    segmentSize: segmentSize === 'known' ? Number(MEGABYTE) : undefined,
    connect: async () => ({
      readReplicationSlot: async () => ({ slotType: 'physical', restartLsn, restartTimeline: null }),
      close: async () => {},
      destroy: () => {},
    }),
  });
}

describe('explainRemovedWal on PostgreSQL 15-17', () => {
  it('calls a slot without restart_lsn invalidated', async () => {
    expect(await diagnose(null)).toBeInstanceOf(SlotInvalidatedError);
  });

  it('calls a slot invalidated whose restart_lsn a status update set inside the refused segment', async () => {
    expect(await diagnose(resume.lsn)).toBeInstanceOf(SlotInvalidatedError);
    expect(await diagnose(resume.lsn + MEGABYTE - 1n)).toBeInstanceOf(SlotInvalidatedError);
  });

  it('keeps the 58P01 when the slot holds WAL past the refused segment, or the segment size is unknown', async () => {
    expect(await diagnose(resume.lsn + MEGABYTE)).toBeUndefined();
    expect(await diagnose(resume.lsn, 'unknown')).toBeUndefined();
  });
});
