import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReceiveEvent } from '@wal/stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkDirectory,
  cleanUp,
  connectTo,
  directorySink,
  isCodedWalError,
  MEGABYTE,
  makeTarget,
  runLibrary,
  segmentName,
  startServer,
} from './harness.js';

afterEach(cleanUp);

const SEGMENT = BigInt(MEGABYTE);
/** Both timeline scenarios: the server's flush position on timeline 2 (origin + 3.5 segments). */
const FLUSH_LSN = SEGMENT + 3n * SEGMENT + SEGMENT / 2n;

/** Stores timeline 1's complete segments 1..`last` with the server's bytes, as an earlier run left them. */
function storeTimelineOneSegments(
  directory: string,
  server: Awaited<ReturnType<typeof startServer>>,
  last: bigint,
) {
  const generator = server.model.timelines[0]!.generator;
  for (let segment = 1n; segment <= last; segment++) {
    writeFileSync(join(directory, segmentName(1, segment, MEGABYTE)), generator.segmentBytes(segment));
  }
}

function startReplications(server: Awaited<ReturnType<typeof startServer>>): string[] {
  return server.recorded.flatMap((entry) =>
    entry.message.type === 'Query' && entry.message.sql.startsWith('START_REPLICATION')
      ? [entry.message.sql]
      : [],
  );
}

describe('timeline switch (spec §3.6)', () => {
  it('follows timeline 1 to its end, stores 00000002.history, continues on timeline 2 with no gap', async () => {
    // The slot's restart point is on timeline 1, so the receiver starts there.
    const server = await startServer(
      'timeline-switch',
      {},
      { server: { slots: { archive: { restartLsn: SEGMENT } } } },
    );
    const { directory } = makeTarget();
    const run = await runLibrary({
      connect: connectTo(server),
      sink: directorySink(directory),
      slot: 'archive',
      endLsn: FLUSH_LSN - 1n,
    });

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
    const report = checkDirectory(directory, server);
    expect(report.problems).toEqual([]);
    expect(report.histories).toEqual([2]);
    const switchSegment = switchLsn / SEGMENT;
    expect(report.segments.map((segment) => segment.name)).toEqual(
      [
        segmentName(1, 1n, MEGABYTE),
        segmentName(1, switchSegment, MEGABYTE, true),
        segmentName(2, switchSegment, MEGABYTE),
        segmentName(2, 3n, MEGABYTE),
        segmentName(2, 4n, MEGABYTE, true),
      ].sort(),
    );
    // Timeline 1's last segment holds everything up to the switch point.
    const oldTimeline = report.segments.find(
      (segment) => segment.name === segmentName(1, switchSegment, MEGABYTE, true),
    )!;
    expect(BigInt(oldTimeline.dataLength)).toBeGreaterThan((switchLsn % SEGMENT) - 64n);
    expect(server.errors).toEqual([]);
  });

  it('a second run resumes from the stored timeline-2 segment and does not fetch the history again', async () => {
    const server = await startServer(
      'timeline-switch',
      {},
      { server: { slots: { archive: { restartLsn: SEGMENT } } } },
    );
    const { directory } = makeTarget();
    const first = await runLibrary({
      connect: connectTo(server),
      sink: directorySink(directory),
      slot: 'archive',
      endLsn: 3n * SEGMENT + 100n,
    });
    expect(first.error).toBeUndefined();
    const before = server.recorded.length;
    const second = await runLibrary({
      connect: connectTo(server),
      sink: directorySink(directory),
      slot: 'archive',
      endLsn: FLUSH_LSN - 1n,
    });
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
    const server = await startServer(
      'timeline-switch',
      {},
      {
        server: { slots: { archive: { restartLsn: 2n * SEGMENT } } },
        script: (session) =>
          session.serveDefault({
            async onQuery(_sql, command) {
              if (command.kind !== 'START_REPLICATION' || command.timeline !== 1) return false;
              await session.sendEndOfTimelineResult(2, command.startLsn);
              return true;
            },
          }),
      },
    );
    const { directory } = makeTarget();
    const run = await runLibrary({
      connect: connectTo(server),
      sink: directorySink(directory),
      slot: 'archive',
      endLsn: FLUSH_LSN - 1n,
    });
    expect(run.error).toBeUndefined();
    expect(run.timedOut).toBe(false);
    expect(run.events.filter((event) => event.type === 'timeline-switched')).toEqual([
      { type: 'timeline-switched', timeline: 2, lsn: 2n * SEGMENT },
    ]);
    expect(run.events.some((event) => event.type === 'disconnected')).toBe(false);
    expect(startReplications(server)).toEqual([
      'START_REPLICATION SLOT "archive" 0/200000 TIMELINE 1',
      'START_REPLICATION SLOT "archive" 0/200000 TIMELINE 2',
    ]);
    const report = checkDirectory(directory, server);
    expect(report.problems).toEqual([]);
    expect(report.segments.map((segment) => segment.name)).toEqual([
      segmentName(2, 2n, MEGABYTE),
      segmentName(2, 3n, MEGABYTE),
      segmentName(2, 4n, MEGABYTE, true),
    ]);
  });

  it('ready scenario, resuming exactly at the switch point: timeline 2 once, its history, then endpos', async () => {
    // Timeline 1 ends on the boundary of segment 3; with segments 1 and 2 stored complete the
    // receiver resumes at 0/300000 on timeline 1, which the server answers without COPY.
    const server = await startServer('start-at-timeline-end');
    const switchLsn = server.model.timelines[0]!.endLsn!;
    expect(switchLsn).toBe(3n * SEGMENT);
    const { directory } = makeTarget();
    storeTimelineOneSegments(directory, server, 2n);
    const run = await runLibrary({
      connect: connectTo(server),
      sink: directorySink(directory),
      endLsn: FLUSH_LSN - 1n,
    });
    expect(run.error).toBeUndefined();
    expect(run.timedOut).toBe(false);
    expect(run.events.filter((event) => event.type === 'timeline-switched')).toEqual([
      { type: 'timeline-switched', timeline: 2, lsn: switchLsn },
    ]);
    expect(run.events.some((event) => event.type === 'disconnected')).toBe(false);
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
    const report = checkDirectory(directory, server);
    expect(report.problems).toEqual([]);
    expect(report.histories).toEqual([2]);
    expect(report.segments.map((segment) => segment.name)).toEqual([
      segmentName(1, 1n, MEGABYTE),
      segmentName(1, 2n, MEGABYTE),
      segmentName(2, 3n, MEGABYTE),
      segmentName(2, 4n, MEGABYTE, true),
    ]);
    expect(server.errors).toEqual([]);
  });

  it('ready scenario, resuming before the switch point: the rest of timeline 1, then a normal switch', async () => {
    const server = await startServer('start-at-timeline-end');
    const { directory } = makeTarget();
    storeTimelineOneSegments(directory, server, 1n);
    const run = await runLibrary({
      connect: connectTo(server),
      sink: directorySink(directory),
      endLsn: FLUSH_LSN - 1n,
    });
    expect(run.error).toBeUndefined();
    expect(run.events.filter((event) => event.type === 'timeline-switched')).toEqual([
      { type: 'timeline-switched', timeline: 2, lsn: 3n * SEGMENT },
    ]);
    expect(run.events.at(-1)).toMatchObject({ type: 'stopped', reason: 'endpos', timeline: 2 });
    expect(startReplications(server)).toEqual([
      'START_REPLICATION 0/200000 TIMELINE 1',
      'START_REPLICATION 0/300000 TIMELINE 2',
    ]);
    const report = checkDirectory(directory, server);
    expect(report.problems).toEqual([]);
    // Timeline 1 ended on a segment boundary: its last segment is complete, not left partial.
    expect(report.segments.map((segment) => segment.name)).toEqual([
      segmentName(1, 1n, MEGABYTE),
      segmentName(1, 2n, MEGABYTE),
      segmentName(2, 3n, MEGABYTE),
      segmentName(2, 4n, MEGABYTE, true),
    ]);
    expect(server.errors).toEqual([]);
  });

  /**
   * A server that answers a start point below the switch point with the skipped COPY (no real
   * walsender does) contradicts itself: timeline 2 begins after where timeline 1 "stopped". The
   * receiver must end with a coded error under --no-loop, and otherwise retry with a growing delay,
   * never spin.
   */
  it('a contradictory skipped COPY is a coded error, retried with a growing delay', async () => {
    const server = await startServer(
      'timeline-switch',
      {},
      {
        server: { slots: { archive: { restartLsn: SEGMENT } } },
        script: (session) =>
          session.serveDefault({
            async onQuery(_sql, command) {
              if (command.kind !== 'START_REPLICATION' || command.timeline !== 1) return false;
              await session.sendEndOfTimelineResult(2, session.model.timelines[0]!.endLsn!);
              return true;
            },
          }),
      },
    );
    const { directory } = makeTarget();
    const once = await runLibrary({
      connect: connectTo(server),
      sink: directorySink(directory),
      slot: 'archive',
      noLoop: true,
    });
    expect(isCodedWalError(once.error)).toBe(true);
    expect(once.error).toMatchObject({ code: 'WAL_ERR_STREAM_UNEXPECTED_TIMELINE' });

    const delays: number[] = [];
    const looping = await runLibrary(
      { connect: connectTo(server), sink: directorySink(directory), slot: 'archive', reconnectDelayMs: 5 },
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
