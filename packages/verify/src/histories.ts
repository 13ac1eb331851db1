import type { ArchiveEntry, ArchiveSource } from '@wal/archive';
import { formatLsn, historyFileName } from '@wal/protocol';
import { type HistoryLine, isPrefix, parseHistory } from './history.js';
import type { Problem } from './problems.js';

/** The archive's history files, parsed, with what is wrong with them. */
export interface Histories {
  lines: Map<number, HistoryLine[]>;
  problems: Problem[];
}

/**
 * Reads and checks every history file: each parses; each parent's history is a prefix of its
 * child's; no numbering hole below `target` (`findNewestTimeLine` stops at the first missing one,
 * spec/archive.md §2.4).
 */
export async function readHistories(
  source: ArchiveSource,
  entries: readonly ArchiveEntry[],
  target: number,
): Promise<Histories> {
  const histories: Histories = { lines: new Map(), problems: [] };
  for (const entry of entries) {
    if (entry.kind !== 'history') continue;
    const parsed = parseHistory((await source.read(entry.name)).toString('utf8'), entry.timeline);
    if (parsed.ok) histories.lines.set(entry.timeline, parsed.lines);
    else histories.problems.push({ kind: 'history', file: entry.name, message: parsed.message });
  }
  for (let timeline = 2; timeline <= target; timeline++) {
    if (
      histories.lines.has(timeline) ||
      histories.problems.some((p) => p.file === historyFileName(timeline))
    ) {
      continue;
    }
    histories.problems.push({
      kind: 'history',
      file: historyFileName(timeline),
      message: `history file of timeline ${timeline} is missing: PostgreSQL's search for the newest timeline stops there`,
    });
  }
  for (const [timeline, lines] of histories.lines) checkParents(timeline, lines, histories);
  return histories;
}

function checkParents(timeline: number, lines: readonly HistoryLine[], histories: Histories): void {
  for (const line of lines) {
    const parent = histories.lines.get(line.timeline);
    if (parent === undefined || isPrefix(parent, lines)) continue;
    histories.problems.push({
      kind: 'history',
      file: historyFileName(timeline),
      lsn: formatLsn(line.switchPoint),
      message: `history of timeline ${timeline} disagrees with ${historyFileName(line.timeline)}: the parent's lines are not the first lines of the child's`,
    });
  }
}
