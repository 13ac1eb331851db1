import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Script, Session } from '@wal/fake-walsender';
import type { ReceiveEvent, ReceiveWalOptions } from '@wal/stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkDirectory,
  cleanUp,
  FLUSH_LSN,
  isCodedWalError,
  type LibraryRun,
  MEGABYTE,
  makeTarget,
  receiveInto,
  SEGMENT,
  segmentName,
  startReplications,
  startServer,
} from './harness.js';

afterEach(cleanUp);

type Server = Awaited<ReturnType<typeof startServer>>;

/** Stores timeline 1's complete segments 1..`last` with the server's bytes, as an earlier run left them. */
function storeTimelineOneSegments(directory: string, server: Server, last: bigint) {
  const generator = server.model.timelines[0]!.generator;
  for (let segment = 1n; segment <= last; segment++) {
    writeFileSync(join(directory, segmentName(1, segment, MEGABYTE)), generator.segmentBytes(segment));
  }
}

/** The timeline-switch scenario with slot "archive" restarting at `restartLsn`, optionally scripted. */
function startTimelineSwitch(restartLsn: bigint, script?: Script): Promise<Server> {
  return startServer(
    'timeline-switch',
    {},
    { server: { slots: { archive: { restartLsn } } }, ...(script === undefined ? {} : { script }) },
  );
}

/** Receives through slot "archive" into `directory`. */
function receiveFromArchive(
  server: Server,
  directory: string,
  options: Partial<ReceiveWalOptions>,
  settings: Parameters<typeof receiveInto>[3] = {},
): Promise<LibraryRun> {
  return receiveInto(server, directory, { slot: 'archive', ...options }, settings);
}

/**
 * A script that answers START_REPLICATION on timeline 1 without COPY (spec §5.4 step 4): timeline 2
 * begins at `switchLsn(session, startLsn)`. Other commands get the default service.
 */
function skipCopyOnTimelineOne(switchLsn: (session: Session, startLsn: bigint) => bigint): Script {
  return (session) =>
    session.serveDefault({
      async onQuery(_sql, command) {
        if (command.kind !== 'START_REPLICATION' || command.timeline !== 1) return false;
        await session.sendEndOfTimelineResult(2, switchLsn(session, command.startLsn));
        return true;
      },
    });
}

/** The run ended well, switched to timeline 2 at `lsn` once, and never reconnected. */
function expectOneSwitchWithoutReconnect(run: LibraryRun, lsn: bigint): void {
  expect(run.error).toBeUndefined();
  expect(run.timedOut).toBe(false);
  expect(run.events.filter((event) => event.type === 'timeline-switched')).toEqual([
    { type: 'timeline-switched', timeline: 2, lsn },
  ]);
  expect(run.events.some((event) => event.type === 'disconnected')).toBe(false);
}

/** Every stored file is the server's and the segments are `names`; the report, for further checks. */
function expectStoredSegments(directory: string, server: Server, names: string[]) {
  const report = checkDirectory(directory, server);
  expect(report.problems).toEqual([]);
  expect(report.segments.map((segment) => segment.name)).toEqual(names);
  return report;
}

/**
 * The start-at-timeline-end scenario (timeline 1 ends on the boundary of segment 3) with timeline
 * 1's segments 1..`storedUpTo` already stored, received up to the flush position.
 */
async function resumeAroundTimelineEnd(storedUpTo: bigint) {
  const server = await startServer('start-at-timeline-end');
  const { directory } = makeTarget();
  storeTimelineOneSegments(directory, server, storedUpTo);
  const run = await receiveInto(server, directory, { endLsn: FLUSH_LSN - 1n });
  return { server, directory, run };
}

/** What start-at-timeline-end leaves: timeline 1 up to its end (a complete segment 2), then timeline 2. */
const SEGMENTS_AROUND_TIMELINE_END = [
  segmentName(1, 1n, MEGABYTE),
  segmentName(1, 2n, MEGABYTE),
  segmentName(2, 3n, MEGABYTE),
  segmentName(2, 4n, MEGABYTE, true),
];

describe('timeline switch (spec §3.6)', () => {
  it('follows timeline 1 to its end, stores 00000002.history, continues on timeline 2 with no gap', async () => {
    // The slot's restart point is on timeline 1, so the receiver starts there.
    const server = await startTimelineSwitch(SEGMENT);
    const { directory } = makeTarget();
    const run = await receiveFromArchive(server, directory, { endLsn: FLUSH_LSN - 1n });

    expect(run.error).toBeUndefined();
    const switchLsn = server.model.timelines[0]!.endLsn!;
    expect(run.events).toContainEqual({ type: 'timeline-switched', timeline: 2, lsn: switchLsn });
    expect(run.events.at(-1)).toMatchObject({
      type: 'stopped',
      reason: 'endpos',
      timeline: 2,
      lsn: FLUSH_LSN,
    });
    expect(startReplications(server)).toEqual([
      'START_REPLICATION SLOT "archive" 0/100000 TIMELINE 1',
      `START_REPLICATION SLOT "archive" 0/${(switchLsn - (switchLsn % SEGMENT)).toString(16).toUpperCase()} TIMELINE 2`,
    ]);
    const switchSegment = switchLsn / SEGMENT;
    const report = expectStoredSegments(
      directory,
      server,
      [
        segmentName(1, 1n, MEGABYTE),
        segmentName(1, switchSegment, MEGABYTE, true),
        segmentName(2, switchSegment, MEGABYTE),
        segmentName(2, 3n, MEGABYTE),
        segmentName(2, 4n, MEGABYTE, true),
      ].sort(),
    );
    expect(report.histories).toEqual([2]);
    // Timeline 1's last segment holds everything up to the switch point.
    const oldTimeline = report.segments.find(
      (segment) => segment.name === segmentName(1, switchSegment, MEGABYTE, true),
    )!;
    expect(BigInt(oldTimeline.dataLength)).toBeGreaterThan((switchLsn % SEGMENT) - 64n);
    expect(server.errors).toEqual([]);
  });

  it('a second run resumes from the stored timeline-2 segment and does not fetch the history again', async () => {
    const server = await startTimelineSwitch(SEGMENT);
    const { directory } = makeTarget();
    const first = await receiveFromArchive(server, directory, { endLsn: 3n * SEGMENT + 100n });
    expect(first.error).toBeUndefined();
    const before = server.recorded.length;
    const second = await receiveFromArchive(server, directory, { endLsn: FLUSH_LSN - 1n });
    expect(second.error).toBeUndefined();
    const later = server.recorded
      .slice(before)
      .flatMap((entry) => (entry.message.type === 'Query' ? [entry.message.sql] : []));
    expect(later.some((sql) => sql.startsWith('TIMELINE_HISTORY'))).toBe(false);
    expect(later.filter((sql) => sql.startsWith('START_REPLICATION'))).toEqual([
      'START_REPLICATION SLOT "archive" 0/300000 TIMELINE 2',
    ]);
    expect(checkDirectory(directory, server).problems).toEqual([]);
  });
});

describe('START_REPLICATION exactly at the end of a timeline (server skips COPY, spec §5.4 step 4)', () => {
  it('moves on to the next timeline once instead of failing forever', async () => {
    // The server's answer for a start point that is exactly where timeline 1 ends (a switch at a
    // segment boundary, as after pg_switch_wal and promote): no COPY, timeline 2 begins there.
    const server = await startTimelineSwitch(
      2n * SEGMENT,
      skipCopyOnTimelineOne((_session, startLsn) => startLsn),
    );
    const { directory } = makeTarget();
    const run = await receiveFromArchive(server, directory, { endLsn: FLUSH_LSN - 1n });
    expectOneSwitchWithoutReconnect(run, 2n * SEGMENT);
    expect(startReplications(server)).toEqual([
      'START_REPLICATION SLOT "archive" 0/200000 TIMELINE 1',
      'START_REPLICATION SLOT "archive" 0/200000 TIMELINE 2',
    ]);
    expectStoredSegments(directory, server, [
      segmentName(2, 2n, MEGABYTE),
      segmentName(2, 3n, MEGABYTE),
      segmentName(2, 4n, MEGABYTE, true),
    ]);
  });

  it('ready scenario, resuming exactly at the switch point: timeline 2 once, its history, then endpos', async () => {
    // Timeline 1 ends on the boundary of segment 3; with segments 1 and 2 stored complete the
    // receiver resumes at 0/300000 on timeline 1, which the server answers without COPY.
    const { server, directory, run } = await resumeAroundTimelineEnd(2n);
    const switchLsn = server.model.timelines[0]!.endLsn!;
    expect(switchLsn).toBe(3n * SEGMENT);
    expectOneSwitchWithoutReconnect(run, switchLsn);
    expect(run.events.at(-1)).toMatchObject({ type: 'stopped', reason: 'endpos', timeline: 2 });
    expect(startReplications(server)).toEqual([
      'START_REPLICATION 0/300000 TIMELINE 1',
      'START_REPLICATION 0/300000 TIMELINE 2',
    ]);
    // No COPY on timeline 1: the client sent no CopyData (status updates) before asking for timeline 2.
    const secondStart = server.recorded.findIndex(
      (entry) => entry.message.type === 'Query' && entry.message.sql.endsWith('TIMELINE 2'),
    );
    expect(secondStart).toBeGreaterThan(0);
    expect(server.recorded.slice(0, secondStart).some((entry) => entry.message.type === 'CopyData')).toBe(
      false,
    );
    expect(server.recorded.some((entry) => entry.message.type === 'CopyData')).toBe(true);
    const report = expectStoredSegments(directory, server, SEGMENTS_AROUND_TIMELINE_END);
    expect(report.histories).toEqual([2]);
    expect(server.errors).toEqual([]);
  });

  it('ready scenario, resuming before the switch point: the rest of timeline 1, then a normal switch', async () => {
    const { server, directory, run } = await resumeAroundTimelineEnd(1n);
    expect(run.error).toBeUndefined();
    expect(run.events.filter((event) => event.type === 'timeline-switched')).toEqual([
      { type: 'timeline-switched', timeline: 2, lsn: 3n * SEGMENT },
    ]);
    expect(run.events.at(-1)).toMatchObject({ type: 'stopped', reason: 'endpos', timeline: 2 });
    expect(startReplications(server)).toEqual([
      'START_REPLICATION 0/200000 TIMELINE 1',
      'START_REPLICATION 0/300000 TIMELINE 2',
    ]);
    // Timeline 1 ended on a segment boundary: its last segment is complete, not left partial.
    expectStoredSegments(directory, server, SEGMENTS_AROUND_TIMELINE_END);
    expect(server.errors).toEqual([]);
  });

  /**
   * A server that answers a start point below the switch point with the skipped COPY (no real
   * walsender does) contradicts itself: timeline 2 begins after where timeline 1 "stopped". The
   * receiver must end with a coded error under --no-loop, and otherwise retry with a growing delay,
   * never spin.
   */
  it('a contradictory skipped COPY is a coded error, retried with a growing delay', async () => {
    const server = await startTimelineSwitch(
      SEGMENT,
      skipCopyOnTimelineOne((session) => session.model.timelines[0]!.endLsn!),
    );
    const { directory } = makeTarget();
    const once = await receiveFromArchive(server, directory, { noLoop: true });
    expect(isCodedWalError(once.error)).toBe(true);
    expect(once.error).toMatchObject({ code: 'WAL_ERR_STREAM_UNEXPECTED_TIMELINE' });

    const delays: number[] = [];
    const looping = await receiveFromArchive(
      server,
      directory,
      { reconnectDelayMs: 5 },
      {
        onEvent: (event: ReceiveEvent) => {
          if (event.type !== 'disconnected') return undefined;
          expect(event.error).toMatchObject({ code: 'WAL_ERR_STREAM_UNEXPECTED_TIMELINE' });
          delays.push(event.retryInMs);
          return delays.length === 4 ? 'stop' : undefined;
        },
      },
    );
    expect(looping.error).toBeUndefined();
    expect(looping.timedOut).toBe(false);
    expect(delays).toEqual([5, 10, 20, 40]);
    expect(checkDirectory(directory, server).problems).toEqual([]);
  });
});
