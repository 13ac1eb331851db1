import { formatLsn, historyFileName } from '@wal/protocol';
import type { ReplicationConnection } from './connection.js';
import { StreamError } from './errors.js';
import type { WalSink } from './sink.js';

/**
 * Fetch and store the history file of `timeline` unless the sink has it (receivelog.c:534-565).
 * Timeline 1 never has one. Differences from pg_receivewal: a file name other than `%08X.history`
 * is an error instead of a warning, and a failed write is an error (spec §10 item 7) instead of
 * being ignored. Returns whether a file was written.
 */
export async function ensureHistoryFile(
  connection: ReplicationConnection,
  sink: WalSink,
  timeline: number,
): Promise<boolean> {
  if (timeline === 1 || (await sink.hasHistoryFile(timeline))) return false;
  const history = await connection.timelineHistory(timeline);
  const expected = historyFileName(timeline);
  if (history.fileName !== expected) {
    throw new StreamError(
      'WAL_ERR_STREAM_HISTORY_FILE_NAME',
      `server reported unexpected history file name for timeline ${timeline}: ${JSON.stringify(history.fileName)} (expected "${expected}"); the server is not behaving like PostgreSQL.`,
    );
  }
  await sink.writeHistoryFile(timeline, history.content);
  return true;
}

/**
 * The sanity checks pg_receivewal makes on the end-of-timeline result (receivelog.c:611-664): the
 * next timeline must be newer, and it must begin at or before the position where streaming of the
 * old timeline stopped (the server may send a little WAL past the switch point, never less).
 */
export function checkNextTimeline(
  current: { timeline: number; stopLsn: bigint },
  next: { timeline: number; startLsn: bigint },
): void {
  if (next.timeline <= current.timeline) {
    throw new StreamError(
      'WAL_ERR_STREAM_UNEXPECTED_TIMELINE',
      `server reported unexpected next timeline ${next.timeline}, following timeline ${current.timeline}`,
      { retryable: true },
    );
  }
  if (next.startLsn > current.stopLsn) {
    throw new StreamError(
      'WAL_ERR_STREAM_UNEXPECTED_TIMELINE',
      `server stopped streaming timeline ${current.timeline} at ${formatLsn(current.stopLsn)}, but reported next timeline ${next.timeline} to begin at ${formatLsn(next.startLsn)}`,
      { retryable: true },
    );
  }
}
