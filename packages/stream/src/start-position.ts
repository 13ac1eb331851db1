import { formatLsn } from '@wal/protocol';
import type { IdentifySystemResult, ReplicationConnection } from './connection.js';
import { StreamError } from './errors.js';
import { segmentStartOf } from './positions.js';
import type { WalSink } from './sink.js';

export type StartPositionSource = 'sink' | 'previous-stream' | 'slot' | 'server';

export interface StartPosition {
  /** Always a segment start. */
  lsn: bigint;
  timeline: number;
  source: StartPositionSource;
}

/**
 * Where to start streaming (pg_receivewal StreamLog, pg_receivewal.c:501-609), in this order:
 * 1. what the sink holds (FindStreamingStart);
 * 2. where the previous connection of this run stopped, for sinks that keep nothing (an addition:
 *    without it an in-memory sink would silently skip the WAL produced while reconnecting);
 * 3. the slot's restart_lsn via READ_REPLICATION_SLOT (server >= 15, slot given);
 * 4. the server's current flush position from IDENTIFY_SYSTEM.
 * Rounded down to a segment start. A start timeline newer than the server's is an error
 * (retryable, as pg_receivewal retries it: receivelog.c:512-517).
 */
export async function chooseStartPosition(input: {
  connection: ReplicationConnection;
  sink: WalSink;
  identify: IdentifySystemResult;
  segmentSize: number;
  slot?: string | undefined;
  previous?: { lsn: bigint; timeline: number } | undefined;
}): Promise<StartPosition> {
  const { connection, sink, identify, segmentSize, slot, previous } = input;
  let chosen: StartPosition | undefined;
  const stored = await sink.resumePoint();
  if (stored !== undefined) {
    chosen = { lsn: stored.lsn, timeline: stored.timeline, source: 'sink' };
  } else if (previous !== undefined) {
    chosen = { lsn: previous.lsn, timeline: previous.timeline, source: 'previous-stream' };
  } else if (slot !== undefined && connection.serverVersion >= 150000) {
    const state = await connection.readReplicationSlot(slot);
    if (state.slotType === null) {
      throw new StreamError(
        'WAL_ERR_STREAM_SLOT_MISSING',
        `replication slot "${slot}" does not exist; create it or fix the slot name.`,
        { retryable: true, slot },
      );
    }
    if (state.slotType !== 'physical') {
      throw new StreamError(
        'WAL_ERR_STREAM_SLOT_NOT_PHYSICAL',
        `expected a physical replication slot, got type "${state.slotType}" instead; use a physical slot for WAL streaming.`,
        { slot },
      );
    }
    if (state.restartLsn !== null) {
      chosen = {
        lsn: state.restartLsn,
        timeline: state.restartTimeline ?? identify.timeline,
        source: 'slot',
      };
    }
  }
  chosen ??= { lsn: identify.xlogPosition, timeline: identify.timeline, source: 'server' };
  if (chosen.timeline > identify.timeline) {
    throw new StreamError(
      'WAL_ERR_STREAM_TIMELINE_NOT_PRESENT',
      `starting timeline ${chosen.timeline} is not present in the server (its current timeline is ${identify.timeline}, start position ${formatLsn(chosen.lsn)})`,
      { retryable: true },
    );
  }
  return { ...chosen, lsn: segmentStartOf(chosen.lsn, segmentSize) };
}
