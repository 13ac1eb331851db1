import {
  type ArchiveEntry,
  ArchiveError,
  type ArchiveFile,
  type ArchiveSource,
  listArchive,
  readArchiveFile,
  readArchiveFileHead,
  withArchive,
} from '@wal/archive';
import { formatLsn, historyFileName, isValidWalSegmentSize, parseLsn, segmentNumberOf } from '@wal/protocol';
import { LONG_PAGE_HEADER_SIZE, PageInfo } from '@wal/protocol/wal-format';
import { VerifyError } from './errors.js';
import { readHistories } from './histories.js';
import { type HistoryLine, type TimelineEntry, timelineEntries, timelineOfPoint } from './history.js';
import { type MissingRange, planFiles, type SegmentFile, SegmentIndex } from './plan.js';
import type { Problem } from './problems.js';
import { WalChecker } from './wal-checker.js';

export interface VerifyOptions {
  /** The archive: a directory path, an `s3://BUCKET/PREFIX` URL, or a source opened before. */
  archive: string | ArchiveSource;
  /** Where recovery must be able to begin: a WAL file name or an LSN. Default: the oldest segment. */
  from?: string;
  /** Where it must be able to get to: a WAL file name or an LSN. Default: the newest segment. */
  to?: string;
  /** The timeline to recover to. Default: the newest in the archive. */
  timeline?: number;
}

export interface VerifyReport {
  /** The archive's location: its directory path or `s3://` URL. */
  archive: string;
  timeline: number;
  segmentSize: number;
  systemId: string | undefined;
  /** The first and last file recovery reads, as checked. */
  firstFile: string | undefined;
  lastFile: string | undefined;
  filesChecked: number;
  bytesChecked: number;
  missing: MissingRange[];
  problems: Problem[];
  /** No problem and nothing missing. */
  sound: boolean;
}

/**
 * Verifies that the archive holds every byte recovery to `timeline` needs, and that those bytes
 * are WAL PostgreSQL would accept. Problems in the archive are the report's content; only an
 * archive that cannot be read at all (or bad options) throws.
 */
export async function verifyArchive(options: VerifyOptions): Promise<VerifyReport> {
  return withArchive(options.archive, (source) => verifySource(source, options));
}

async function verifySource(source: ArchiveSource, options: VerifyOptions): Promise<VerifyReport> {
  const entries = await listArchive(source);
  const segments = entries.filter((entry) => entry.kind === 'segment');
  if (segments.length === 0) {
    throw new VerifyError(
      'WAL_ERR_VERIFY_EMPTY_ARCHIVE',
      `the archive "${source.location}" holds no WAL segment`,
    );
  }
  const target = options.timeline ?? Math.max(...entries.map((entry) => entry.timeline));
  const histories = await readHistories(source, entries, target);
  const timelines = timelineEntries(target, histories.lines.get(target) ?? []);
  const segmentSize = await findSegmentSize(source, segments);
  const index = new SegmentIndex(entries, segmentSize);
  const problems: Problem[] = [...histories.problems, ...orphans(entries, timelines, target)];
  problems.push(...staleProblems(index));
  const range = requestedRange(options, index.bounds(timelines, segmentSize), segmentSize);
  const plan = planFiles(index, timelines, range, segmentSize);
  problems.push(...plan.problems);
  problems.push(
    ...switchPointsBeyond(histories.lines.get(target) ?? [], target, (range.last + 1n) * BigInt(segmentSize)),
  );
  const content = await checkContent(source, plan.files, segmentSize, timelines, target);
  problems.push(...content.problems);
  return {
    archive: source.location,
    timeline: target,
    segmentSize,
    systemId: content.systemId?.toString(),
    firstFile: plan.files[0]?.entry.name,
    lastFile: plan.files.at(-1)?.entry.name,
    filesChecked: plan.files.length,
    bytesChecked: content.bytes,
    missing: plan.missing,
    problems,
    sound: problems.length === 0 && plan.missing.length === 0,
  };
}

function orphans(
  entries: readonly ArchiveEntry[],
  timelines: readonly TimelineEntry[],
  target: number,
): Problem[] {
  const known = new Set(timelines.map((entry) => entry.timeline));
  const orphaned = new Set(entries.map((entry) => entry.timeline).filter((timeline) => !known.has(timeline)));
  return [...orphaned].map((timeline) => ({
    kind: 'orphan-timeline',
    file: entries.find((entry) => entry.timeline === timeline)!.name,
    message: `timeline ${timeline} is not in the history of timeline ${target}: recovery to ${target} never reads it`,
  }));
}

/** Switch points of the verified history after the archive's end: WAL the archive never saw. */
function switchPointsBeyond(lines: readonly HistoryLine[], target: number, end: bigint): Problem[] {
  return lines
    .filter((line) => line.switchPoint > end)
    .map((line) => ({
      kind: 'history',
      file: historyFileName(target),
      lsn: formatLsn(line.switchPoint),
      message: `timeline ${line.timeline} switches at ${formatLsn(line.switchPoint)}, after the end of the archive's WAL (${formatLsn(end)})`,
    }));
}

function staleProblems(index: SegmentIndex): Problem[] {
  return index.all
    .filter((file) => index.isStale(file))
    .map((file) => ({
      kind: 'stale-partial',
      file: file.entry.name,
      message: `"${file.entry.name}" is a stale partial segment: a complete or later segment of timeline ${file.timeline} exists, so recovery never reads it; remove it once you have checked the archive`,
    }));
}

function requestedRange(
  options: VerifyOptions,
  bounds: { first: bigint; last: bigint } | undefined,
  segmentSize: number,
): { first: bigint; last: bigint } {
  const first = options.from === undefined ? bounds?.first : segmentOf(options.from, segmentSize, '--from');
  const last = options.to === undefined ? bounds?.last : segmentOf(options.to, segmentSize, '--to');
  if (first === undefined || last === undefined || first > last) {
    throw new VerifyError(
      'WAL_ERR_VERIFY_INVALID_RANGE',
      first === undefined || last === undefined
        ? 'the archive holds no segment of the verified timeline'
        : `the range to verify is empty: it begins after it ends`,
    );
  }
  return { first, last };
}

/** A WAL file name or an LSN, as a segment number. */
function segmentOf(text: string, segmentSize: number, what: string): bigint {
  if (/^[0-9A-F]{24}$/.test(text)) {
    const segmentsPerId = 0x100000000n / BigInt(segmentSize);
    return BigInt(`0x${text.slice(8, 16)}`) * segmentsPerId + BigInt(`0x${text.slice(16)}`);
  }
  try {
    return segmentNumberOf(parseLsn(text), segmentSize);
  } catch (error) {
    throw new VerifyError(
      'WAL_ERR_VERIFY_INVALID_RANGE',
      `${what.replace(/^--/, '')} "${text}" is neither a WAL file name nor an LSN`,
      { cause: error },
    );
  }
}

/** The segment size from the long header of the first segment that has a valid one. */
async function findSegmentSize(source: ArchiveSource, segments: readonly ArchiveEntry[]): Promise<number> {
  for (const entry of segments) {
    let head: Buffer;
    try {
      head = await readArchiveFileHead(archiveFile(source, entry), LONG_PAGE_HEADER_SIZE);
    } catch (error) {
      if (error instanceof ArchiveError && error.code === 'WAL_ERR_ARCHIVE_CORRUPT') continue;
      throw error;
    }
    if (head.length < LONG_PAGE_HEADER_SIZE) continue;
    const size = head.readUInt32LE(32);
    if (head.readUInt16LE(2) & PageInfo.LONG_HEADER && isValidWalSegmentSize(size)) return size;
  }
  throw new VerifyError(
    'WAL_ERR_VERIFY_EMPTY_ARCHIVE',
    `no segment in "${source.location}" begins with a valid long page header: cannot tell the segment size`,
  );
}

function archiveFile(source: ArchiveSource, entry: ArchiveEntry): ArchiveFile {
  const partial = entry.kind === 'segment' && entry.partial;
  const wanted = entry.kind === 'segment' ? entry.walFileName : entry.name;
  return {
    wanted,
    kind: entry.kind,
    name: entry.name,
    path: source.locate(entry.name),
    source,
    size: entry.size,
    compression: entry.kind === 'segment' ? entry.compression : 'none',
    partial,
  };
}

interface ContentResult {
  problems: Problem[];
  bytes: number;
  systemId: bigint | undefined;
}

/** Reads the planned files in order through one checker; segments of another system are reported once. */
async function checkContent(
  source: ArchiveSource,
  files: readonly SegmentFile[],
  segmentSize: number,
  timelines: readonly TimelineEntry[],
  target: number,
): Promise<ContentResult> {
  const checker = new WalChecker({
    segmentSize,
    timelineAt: (lsn) => timelineOfPoint(lsn, timelines),
    historyFile: target > 1 ? historyFileName(target) : undefined,
  });
  const results: { file: SegmentFile; systemId: bigint | undefined; problems: Problem[] }[] = [];
  let bytes = 0;
  for (const file of files) {
    const startLsn = BigInt(segmentSize) * file.segmentNumber;
    checker.beginFile({
      name: file.entry.name,
      timeline: file.timeline,
      startLsn,
      partial: file.entry.partial,
    });
    const readProblem = await feedFile(checker, archiveFile(source, file.entry), startLsn, segmentSize);
    const result = checker.endFile();
    bytes += result.bytes;
    const problems = readProblem === undefined ? result.problems : [readProblem];
    results.push({ file, systemId: result.systemId, problems });
  }
  const systemId = majority(results.map((result) => result.systemId));
  const problems: Problem[] = [];
  for (const result of results) {
    if (result.systemId !== undefined && systemId !== undefined && result.systemId !== systemId) {
      problems.push({
        kind: 'foreign-system',
        file: result.file.entry.name,
        lsn: formatLsn(BigInt(segmentSize) * result.file.segmentNumber),
        message: `"${result.file.entry.name}" is from another database system: system identifier ${result.systemId}, the archive's is ${systemId}`,
      });
    } else problems.push(...result.problems);
  }
  return { problems, bytes, systemId };
}

async function feedFile(
  checker: WalChecker,
  file: ArchiveFile,
  startLsn: bigint,
  segmentSize: number,
): Promise<Problem | undefined> {
  let room = segmentSize;
  try {
    for await (const chunk of readArchiveFile(file)) {
      // Bytes past the segment size belong to no LSN of this file: they are not WAL to check.
      if (room > 0) checker.feed(chunk.length > room ? chunk.subarray(0, room) : chunk);
      room -= Math.min(room, chunk.length);
    }
    return undefined;
  } catch (error) {
    if (!(error instanceof ArchiveError) || error.code !== 'WAL_ERR_ARCHIVE_CORRUPT') throw error;
    return { kind: 'corrupt-file', file: file.name, lsn: formatLsn(startLsn), message: error.message };
  }
}

function majority(values: readonly (bigint | undefined)[]): bigint | undefined {
  const counts = new Map<bigint, number>();
  for (const value of values) if (value !== undefined) counts.set(value, (counts.get(value) ?? 0) + 1);
  let best: bigint | undefined;
  for (const [value, count] of counts) if (best === undefined || count > counts.get(best)!) best = value;
  return best;
}
