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
  checkHistoryContent(timeline, history.content);
  await sink.writeHistoryFile(timeline, history.content);
  return true;
}

/**
 * The checks PostgreSQL's readTimeLineHistory (src/backend/access/transam/timeline.c) makes when it
 * reads a history file, applied before we store one: blank and '#' lines are skipped; every other
 * line is `<tli>\t<X/X>[\t<reason>]`; timelines ascend and are older than `timeline`. Stricter: no
 * NUL byte (fgets would stop there, silently), and at least one entry (timeline > 1 has a parent).
 * A server that sends anything else is not PostgreSQL, and the file would break a later recovery.
 */
export function checkHistoryContent(timeline: number, content: Buffer): void {
  const refuse: (problem: string) => never = (problem) => {
    throw new StreamError(
      'WAL_ERR_STREAM_HISTORY_FILE_CONTENT',
      `server sent an invalid history file for timeline ${timeline}: ${problem}; the server is not behaving like PostgreSQL, nothing was stored.`,
    );
  };
  if (content.includes(0)) refuse('it contains a NUL byte (binary data)');
  let previous = 0;
  let entries = 0;
  for (const [index, line] of content.toString('latin1').split('\n').entries()) {
    const trimmed = line.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const match = /^(\d{1,10})\t([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})(?:\s|$)/.exec(trimmed);
    if (match === null) {
      refuse(`line ${index + 1} is not "<timeline>\\t<switch point>" (${JSON.stringify(line.slice(0, 60))})`);
    }
    const entryTimeline = Number(match[1]);
    if (entryTimeline <= previous) refuse(`line ${index + 1}: timeline IDs must be in increasing sequence`);
    if (entryTimeline >= timeline) {
      refuse(`line ${index + 1}: timeline ${entryTimeline} is not older than timeline ${timeline}`);
    }
    previous = entryTimeline;
    entries += 1;
  }
  if (entries === 0) refuse('it names no parent timeline');
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
