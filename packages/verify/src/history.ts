import { formatLsn } from '@wal/protocol';

/** One line of a history file: timeline `timeline` ended at `switchPoint`. */
export interface HistoryLine {
  timeline: number;
  switchPoint: bigint;
}

/**
 * One entry of PostgreSQL's timeline history list (`timeline.c` readTimeLineHistory): timeline
 * `timeline` holds WAL in `[begin, end)`; an undefined bound is open.
 */
export interface TimelineEntry {
  timeline: number;
  begin: bigint | undefined;
  end: bigint | undefined;
}

export type HistoryParse = { ok: true; lines: HistoryLine[] } | { ok: false; message: string };

/**
 * Parses a history file as `readTimeLineHistory` does: blank and `#` lines skipped,
 * `%u\t%X/%X` with any whitespace, the rest of a line ignored; timelines strictly ascending and
 * below the file's own. Switch points must ascend too (PostgreSQL checks only timelines).
 */
export function parseHistory(text: string, ownTimeline: number): HistoryParse {
  const lines: HistoryLine[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(\d+)\s+([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})(\s|$)/.exec(line);
    if (match === null) return { ok: false, message: `syntax error in history file: "${line}"` };
    const timeline = Number(match[1]);
    const switchPoint = (BigInt(`0x${match[2]}`) << 32n) | BigInt(`0x${match[3]}`);
    const previous = lines.at(-1);
    if (previous !== undefined && timeline <= previous.timeline) {
      return { ok: false, message: `timeline ${timeline} does not follow timeline ${previous.timeline}` };
    }
    if (previous !== undefined && switchPoint < previous.switchPoint) {
      return {
        ok: false,
        message: `switch point ${formatLsn(switchPoint)} of timeline ${timeline} is before ${formatLsn(previous.switchPoint)}, the switch point of timeline ${previous.timeline}`,
      };
    }
    if (timeline >= ownTimeline) {
      return {
        ok: false,
        message: `timeline ${timeline} is not below the file's own timeline ${ownTimeline}`,
      };
    }
    lines.push({ timeline, switchPoint });
  }
  return { ok: true, lines };
}

/** The history list of `target`, newest first, as `readTimeLineHistory` builds it. */
export function timelineEntries(target: number, lines: readonly HistoryLine[]): TimelineEntry[] {
  const entries: TimelineEntry[] = [];
  let begin: bigint | undefined;
  for (const line of lines) {
    entries.unshift({ timeline: line.timeline, begin, end: line.switchPoint });
    begin = line.switchPoint;
  }
  entries.unshift({ timeline: target, begin, end: undefined });
  return entries;
}

/** `tliOfPointInHistory`: the timeline that holds `lsn`, or undefined outside the history. */
export function timelineOfPoint(lsn: bigint, entries: readonly TimelineEntry[]): number | undefined {
  for (const entry of entries) {
    if ((entry.begin === undefined || entry.begin <= lsn) && (entry.end === undefined || lsn < entry.end)) {
      return entry.timeline;
    }
  }
  return undefined;
}

/** Whether `parent`'s lines are the first lines of `child`'s (a parent's history is a prefix). */
export function isPrefix(parent: readonly HistoryLine[], child: readonly HistoryLine[]): boolean {
  if (parent.length > child.length) return false;
  return parent.every(
    (line, index) =>
      line.timeline === child[index]!.timeline && line.switchPoint === child[index]!.switchPoint,
  );
}
