import { errorFields } from '../commands.js';
import type { ServerModelOptions } from '../model.js';
import { commonServer, type ScenarioFactory } from './scenario.js';

/**
 * Two timelines: 1 ends at `switchAt` (default `defaultSwitchSegments` segments after LSN 0; the
 * model rounds a switch point up to a record start unless it is exactly on a segment boundary),
 * 2 is current and runs to the flush position. IDENTIFY_SYSTEM reports timeline 2.
 */
function twoTimelines(parameters: Record<string, string>, defaultSwitchSegments = 2.5): ServerModelOptions {
  const base = commonServer(parameters);
  const segment = BigInt(base.segmentSize!);
  const switchAt =
    parameters.switchAt === undefined
      ? (segment * BigInt(defaultSwitchSegments * 2)) / 2n
      : BigInt(parameters.switchAt);
  return { ...base, timelines: [{ timeline: 1, switchAt }, { timeline: 2 }] };
}

/**
 * timeline-switch: a client on timeline 1 (it resumes there, or asks for it) gets the WAL up to the
 * switch point, then CopyDone, the next-timeline row (2, switch point), START_STREAMING,
 * START_REPLICATION, ReadyForQuery; TIMELINE_HISTORY 2 and START_REPLICATION on 2 then stream the
 * new timeline, whose first segment starts with the old timeline's bytes (spec §3.6).
 */
export const timelineSwitch: ScenarioFactory = (parameters) => ({
  name: 'timeline-switch',
  description: 'timeline 1 ends at a switch point; the client follows to timeline 2',
  server: twoTimelines(parameters),
  run: (session) => session.serveDefault(),
});

/**
 * start-at-timeline-end: START_REPLICATION on the old timeline exactly at its switch point is
 * answered with no COPY at all, just the next-timeline result and ReadyForQuery (spec §5.4 step 4;
 * pg_receivewal fails here with an empty message, the walreceiver copes). Like the walsender, an
 * earlier start point streams the rest of the old timeline first (the default behaviour).
 */
export const startAtTimelineEnd: ScenarioFactory = (parameters) => ({
  name: 'start-at-timeline-end',
  description:
    'timeline 1 ends on a segment boundary; START_REPLICATION exactly there skips COPY (next-timeline row, CommandComplete x2, ReadyForQuery)',
  // On a segment boundary, so that a receiver holding the complete last segment of timeline 1
  // asks for exactly the switch point (spec §10 item 8).
  server: twoTimelines(parameters, 3),
  run: (session) =>
    session.serveDefault({
      async onQuery(_sql, command) {
        if (command.kind !== 'START_REPLICATION') return false;
        const first = session.model.timelines[0]!;
        if ((command.timeline ?? session.model.currentTimeline.timeline) !== first.timeline) return false;
        if (command.startLsn < first.endLsn!) return false;
        if (command.startLsn > first.endLsn!) {
          await session.error(
            errorFields('XX000', `requested starting point is not in this server's history`, {
              detail: `This server's history forked from timeline ${first.timeline}.`,
            }),
          );
          return true;
        }
        await session.sendEndOfTimelineResult(session.model.timelines[1]!.timeline, first.endLsn!);
        return true;
      },
    }),
});
