import type { ArchiveEntry } from '@wal/archive';
import { formatLsn, parseWalFileName, segmentNumberOf, segmentStartLsn, walFileName } from '@wal/protocol';
import type { TimelineEntry } from './history.js';
import type { Problem } from './problems.js';

/** A segment file in the archive, by timeline and segment number. */
export interface SegmentFile {
  entry: ArchiveEntry & { kind: 'segment' };
  timeline: number;
  segmentNumber: bigint;
}

/** Segments recovery needs that the archive lacks: first and last file name, and the LSN range. */
export interface MissingRange {
  firstFile: string;
  lastFile: string;
  startLsn: string;
  endLsn: string;
}

export interface Plan {
  files: SegmentFile[];
  missing: MissingRange[];
  problems: Problem[];
}

/** Index of the archive's segment files: complete and partial, per timeline and segment number. */
export class SegmentIndex {
  private readonly complete = new Map<string, SegmentFile>();
  private readonly partial = new Map<string, SegmentFile>();
  private readonly newest = new Map<number, bigint>();
  readonly all: SegmentFile[] = [];

  constructor(entries: readonly ArchiveEntry[], segmentSize: number) {
    for (const entry of entries) {
      if (entry.kind !== 'segment') continue;
      const parsed = parseWalFileName(entry.name, segmentSize);
      if (parsed === undefined) continue;
      const file = { entry, timeline: entry.timeline, segmentNumber: parsed.segmentNumber };
      this.all.push(file);
      const key = `${entry.timeline}/${parsed.segmentNumber}`;
      // More than one form of a name: the reader takes plain first, then .gz, .lz4, .zst.
      const map = entry.partial ? this.partial : this.complete;
      if (!map.has(key)) map.set(key, file);
      const newest = this.newest.get(entry.timeline);
      if (newest === undefined || parsed.segmentNumber > newest)
        this.newest.set(entry.timeline, parsed.segmentNumber);
    }
  }

  /** The file the archive reader serves for this name: complete, else a partial that is newest. */
  usable(timeline: number, segmentNumber: bigint): SegmentFile | undefined {
    const key = `${timeline}/${segmentNumber}`;
    const complete = this.complete.get(key);
    if (complete !== undefined) return complete;
    const partial = this.partial.get(key);
    return partial !== undefined && !this.isStale(partial) ? partial : undefined;
  }

  /** A `.partial` the reader never serves: a complete copy or a later segment of its timeline exists. */
  isStale(file: SegmentFile): boolean {
    if (!file.entry.partial) return false;
    if (this.complete.has(`${file.timeline}/${file.segmentNumber}`)) return true;
    return (this.newest.get(file.timeline) ?? -1n) > file.segmentNumber;
  }

  /** The segment numbers with files on the given timelines, each up to its timeline's end. */
  bounds(
    timelines: readonly TimelineEntry[],
    segmentSize: number,
  ): { first: bigint; last: bigint } | undefined {
    let first: bigint | undefined;
    let last: bigint | undefined;
    for (const file of this.all) {
      const entry = timelines.find((timeline) => timeline.timeline === file.timeline);
      if (entry === undefined || this.isStale(file)) continue;
      if (entry.end !== undefined && file.segmentNumber > segmentNumberOf(entry.end, segmentSize)) continue;
      if (first === undefined || file.segmentNumber < first) first = file.segmentNumber;
      if (last === undefined || file.segmentNumber > last) last = file.segmentNumber;
    }
    return first === undefined || last === undefined ? undefined : { first, last };
  }
}

/**
 * Walks segments `first..last` the way recovery picks files (`XLogFileReadAnyTLI`,
 * spec/archive.md §2.3): for each segment, the newest timeline of the history that begins at or
 * before it and is not older than the previous file's. A timeline that begins and ends inside one
 * segment needs no file. A file found only on an older timeline is what recovery would silently
 * replay instead: reported.
 */
export function planFiles(
  index: SegmentIndex,
  timelines: readonly TimelineEntry[],
  range: { first: bigint; last: bigint },
  segmentSize: number,
): Plan {
  const plan: Plan = { files: [], missing: [], problems: [] };
  let currentTimeline = 0;
  let gap: { first: bigint; last: bigint; timeline: number } | undefined;
  const closeGap = () => {
    if (gap !== undefined) plan.missing.push(missingRange(gap, segmentSize));
    gap = undefined;
  };
  for (let segment = range.first; segment <= range.last; segment++) {
    const eligible = timelines.filter(
      (entry) =>
        entry.timeline >= currentTimeline &&
        (entry.begin === undefined || segment >= segmentNumberOf(entry.begin, segmentSize)),
    );
    const expected = eligible[0];
    if (expected === undefined) break;
    const found = eligible
      .map((entry) => index.usable(entry.timeline, segment))
      .find((file) => file !== undefined);
    if (found === undefined) {
      if (gap === undefined) gap = { first: segment, last: segment, timeline: expected.timeline };
      else gap.last = segment;
      continue;
    }
    closeGap();
    if (found.timeline !== expected.timeline) {
      const name = walFileName(expected.timeline, segment, segmentSize);
      plan.problems.push({
        kind: 'timeline-fallback',
        file: found.entry.name,
        lsn: formatLsn(segmentStartLsn(segment, segmentSize)),
        message: `"${name}" is missing: recovery would replay "${found.entry.name}" of timeline ${found.timeline} instead`,
      });
    }
    currentTimeline = found.timeline;
    plan.files.push(found);
  }
  closeGap();
  return plan;
}

function missingRange(
  gap: { first: bigint; last: bigint; timeline: number },
  segmentSize: number,
): MissingRange {
  return {
    firstFile: walFileName(gap.timeline, gap.first, segmentSize),
    lastFile: walFileName(gap.timeline, gap.last, segmentSize),
    startLsn: formatLsn(segmentStartLsn(gap.first, segmentSize)),
    endLsn: formatLsn(segmentStartLsn(gap.last + 1n, segmentSize)),
  };
}
