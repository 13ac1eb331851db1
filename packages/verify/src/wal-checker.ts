import { formatLsn } from '@wal/protocol';
import {
  decodePageHeader,
  LONG_PAGE_HEADER_SIZE,
  maximumAlign,
  PageInfo,
  pageHeaderSize,
  RECORD_CRC_OFFSET,
  RECORD_HEADER_SIZE,
  RECORD_MAXIMUM_LENGTH,
  RM_XLOG_ID,
  SHORT_PAGE_HEADER_SIZE,
  WAL_PAGE_SIZE,
  XLOG_SWITCH,
} from '@wal/protocol/wal-format';
import { continueCrc32c } from './crc.js';
import { checkPageHeader, isZeroHeader, pageFlags } from './page-check.js';
import type { Problem, ProblemKind } from './problems.js';

const PAGE_SIZE_BIG = BigInt(WAL_PAGE_SIZE);

/** A file the checker reads next, in LSN order. */
export interface CheckedFile {
  /** The stored name, for problems. */
  name: string;
  timeline: number;
  /** The LSN of the file's first byte (its segment's start). */
  startLsn: bigint;
  /** A `.partial`: its WAL may end anywhere. */
  partial: boolean;
}

/** What one file turned out to be. */
export interface CheckedFileResult {
  bytes: number;
  systemId: bigint | undefined;
  problems: Problem[];
}

export interface WalCheckerOptions {
  segmentSize: number;
  /**
   * The timeline that holds an LSN according to the verified timeline's history
   * (`tliOfPointInHistory`); a page from another timeline contradicts that history.
   */
  timelineAt?: (lsn: bigint) => number | undefined;
  /** The history file named in a contradiction. */
  historyFile?: string;
}

/**
 * Where the reader is (spec/archive.md §3): at a record boundary; inside a record's header or
 * body; looking for the next record after a fault or a gap; in the zero rest of a segment after
 * XLOG_SWITCH; or past the end of the file's WAL.
 */
type State = 'boundary' | 'header' | 'body' | 'resync' | 'switched' | 'ended';

/**
 * Checks WAL the way `xlogreader.c` reads it, file after file: every page header, the long header,
 * continuation flags and lengths, each record's length, `xl_prev` link and CRC-32C. The CRC is
 * computed while the record streams by (body first, then the header saved aside), so no record is
 * reassembled or copied; only a page split across input chunks is copied once. After a fault the
 * reader resynchronises at the next page the way `XLogFindNextRecord` does, so one fault is
 * reported once.
 */
export class WalChecker {
  private readonly segmentSize: number;
  private readonly timelineAt: ((lsn: bigint) => number | undefined) | undefined;
  private readonly historyFile: string | undefined;
  private historyReported = false;
  private state: State = 'resync';
  /** The LSN of the next page to read. */
  private position = -1n;
  /** The current page's header, copied aside: 40 bytes at most. */
  private readonly pageHeader = Buffer.alloc(LONG_PAGE_HEADER_SIZE);
  private pageHeaderFill = 0;
  /** Reading the page header; reading records from `recordsFrom` on; or skipping the page. */
  private pagePhase: 'header' | 'records' | 'skip' = 'header';
  private recordsFrom = 0;
  /** Alignment bytes still to skip after a record that ended at the end of a chunk. */
  private padding = 0;
  private file: CheckedFile | undefined;
  private fileBytes = 0;
  private fileMagic: number | undefined;
  private fileSystemId: bigint | undefined;
  private previousSystemId: bigint | undefined;
  private problems: Problem[] = [];
  private readonly recordHeader = Buffer.alloc(RECORD_HEADER_SIZE);
  private headerBytes = 0;
  private recordStart = 0n;
  private recordLength = 0;
  private recordRead = 0;
  private crc = 0;
  private previousRecord: bigint | undefined;
  private lastRecordEnd: bigint | undefined;

  constructor(options: WalCheckerOptions) {
    this.segmentSize = options.segmentSize;
    this.timelineAt = options.timelineAt;
    this.historyFile = options.historyFile;
  }

  /** The end of the last record whose CRC and link were good: a safe flush position. */
  get lastGoodRecordEnd(): bigint | undefined {
    return this.lastRecordEnd;
  }

  /** The first problem found in the current file, if any. */
  get firstProblem(): Problem | undefined {
    return this.problems[0];
  }

  /**
   * Starts a file (or a stream). One that continues where the previous one ended continues its
   * chain, even inside a page; any other restarts it, and nothing is vouched for until a record
   * ends again.
   */
  beginFile(file: CheckedFile): void {
    if (this.state === 'ended' || file.startLsn !== this.position) {
      this.restart();
      this.lastRecordEnd = undefined;
      this.pageHeaderFill = 0;
      this.padding = 0;
      // A stream may begin inside a page (a new timeline at its switch point): read from the next page.
      this.pagePhase = file.startLsn % PAGE_SIZE_BIG === 0n ? 'header' : 'skip';
      this.recordsFrom = WAL_PAGE_SIZE;
    }
    this.file = file;
    this.position = file.startLsn;
    this.fileBytes = 0;
    this.fileMagic = undefined;
    this.fileSystemId = undefined;
    this.problems = [];
  }

  /**
   * Feeds the file's next bytes, any size: pages are read in place, each record's bytes as they
   * come (a receiver can check WAL as it arrives). Only page headers (24 or 40 bytes) and record
   * headers (24 bytes) are copied aside when a chunk ends inside one.
   */
  feed(chunk: Buffer): void {
    this.fileBytes += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      if (this.pagePhase === 'header') {
        offset = this.takePageHeader(chunk, offset);
        continue;
      }
      const pageOffset = Number(this.position % PAGE_SIZE_BIG);
      const count = Math.min(chunk.length - offset, WAL_PAGE_SIZE - pageOffset);
      if (this.pagePhase === 'records') {
        const skip = Math.max(0, Math.min(count, this.recordsFrom - pageOffset));
        if (skip < count) {
          const pageStart = this.position - BigInt(pageOffset);
          this.readRecords(chunk, offset + skip, offset + count, pageOffset + skip, pageStart);
        }
      }
      this.position += BigInt(count);
      offset += count;
      if (pageOffset + count === WAL_PAGE_SIZE) this.pagePhase = 'header';
    }
  }

  /** Collects the page header (24 bytes, 40 for a long one) and reads it once complete. */
  private takePageHeader(chunk: Buffer, offset: number): number {
    const info = this.pageHeader.readUInt16LE(2);
    const needed =
      this.pageHeaderFill >= SHORT_PAGE_HEADER_SIZE && !isZeroHeader(this.pageHeader)
        ? pageHeaderSize(info)
        : SHORT_PAGE_HEADER_SIZE;
    const count = Math.min(needed - this.pageHeaderFill, chunk.length - offset);
    copySmall(chunk, offset, this.pageHeader, this.pageHeaderFill, count);
    this.pageHeaderFill += count;
    if (this.pageHeaderFill < needed) return offset + count;
    if (needed < pageHeaderSize(this.pageHeader.readUInt16LE(2)) && !isZeroHeader(this.pageHeader)) {
      return offset + count;
    }
    this.pageHeaderFill = 0;
    const start = this.readPage(this.position);
    this.recordsFrom = start ?? WAL_PAGE_SIZE;
    this.pagePhase = start === undefined ? 'skip' : 'records';
    this.position += BigInt(needed);
    return offset + count;
  }

  /** Ends the file: a short completed segment is reported where its data stops. */
  endFile(): CheckedFileResult {
    const file = this.file!;
    const stored = Math.min(this.fileBytes, this.segmentSize);
    if (!file.partial && this.fileBytes < this.segmentSize && this.state !== 'ended') {
      this.report(
        'truncated-segment',
        file.startLsn + BigInt(stored),
        `segment "${file.name}" holds ${this.fileBytes} bytes, a segment has ${this.segmentSize}`,
      );
      this.state = 'ended';
    }
    if (file.partial) this.state = 'ended';
    if (this.fileSystemId !== undefined) this.previousSystemId = this.fileSystemId;
    return { bytes: this.fileBytes, systemId: this.fileSystemId, problems: this.problems };
  }

  private restart(): void {
    this.state = 'resync';
    this.previousRecord = undefined;
  }

  private report(kind: ProblemKind, lsn: bigint, message: string, file = this.file?.name): void {
    this.problems.push({ kind, file, lsn: formatLsn(lsn), message });
  }

  /** Reads a complete page header; returns the page offset where records start, or undefined. */
  private readPage(pageLsn: bigint): number | undefined {
    if (this.state === 'ended') return undefined;
    if (isZeroHeader(this.pageHeader)) {
      if (this.state !== 'switched') this.endOfWal(pageLsn);
      return undefined;
    }
    // XLOG_SWITCH: the rest of the segment is zero pages; the next record starts the next segment.
    if (this.state === 'switched') {
      if (pageLsn % BigInt(this.segmentSize) !== 0n) return undefined;
      this.state = 'boundary';
    }
    return this.checkHeader(this.pageHeader, pageLsn);
  }

  /** Validates the header and the continuation; returns where records start, or undefined. */
  private checkHeader(page: Buffer, pageLsn: bigint): number | undefined {
    const header = decodePageHeader(page);
    const segmentStart = pageLsn % BigInt(this.segmentSize) === 0n;
    const fault = checkPageHeader(header, {
      pageAddress: pageLsn,
      segmentStart,
      segmentSize: this.segmentSize,
      fileTimeline: this.file!.timeline,
      magic: this.fileMagic,
    });
    if (fault !== undefined) {
      this.report(fault.kind, pageLsn, fault.message);
      this.restart();
      return undefined;
    }
    if (segmentStart) this.startSegment(header.magic, header.long!.systemId);
    this.checkTimeline(header.timeline, pageLsn);
    return this.continuation(header.info, header.remainingLength, pageLsn, pageHeaderSize(header.info));
  }

  private startSegment(magic: number, systemId: bigint): void {
    this.fileMagic = magic;
    this.fileSystemId = systemId;
    // A segment of another system shares no chain with its neighbours: report the segment once.
    if (this.previousSystemId !== undefined && systemId !== this.previousSystemId) this.restart();
  }

  private checkTimeline(timeline: number, pageLsn: bigint): void {
    if (this.timelineAt === undefined || this.historyReported) return;
    const expected = this.timelineAt(pageLsn);
    if (expected === undefined || expected === timeline) return;
    this.historyReported = true;
    this.report(
      'history',
      pageLsn,
      `page at ${formatLsn(pageLsn)} in "${this.file!.name}" was written on timeline ${timeline}, but the history says timeline ${expected} holds that LSN`,
      this.historyFile,
    );
  }

  private continuation(info: number, remaining: number, pageLsn: bigint, start: number): number | undefined {
    const continues = (info & PageInfo.FIRST_IS_CONTRECORD) !== 0;
    const overwritten = (info & pageFlags(this.fileMagic ?? 0).overwrite) !== 0;
    if (this.state === 'header' || this.state === 'body') {
      // An aborted record overwritten after crash recovery (spec/archive.md §3.7): start afresh here.
      if (overwritten) this.state = 'boundary';
      else if (!continues) {
        this.report(
          'continuation',
          pageLsn,
          `record at ${formatLsn(this.recordStart)} continues onto page ${formatLsn(pageLsn)}, which has no continuation flag`,
        );
        this.restart();
      } else if (remaining !== this.recordLength - this.recordRead) {
        this.report(
          'continuation',
          pageLsn,
          `invalid continuation length ${remaining} at ${formatLsn(pageLsn)} (expected ${this.recordLength - this.recordRead})`,
        );
        this.restart();
        return undefined;
      } else return start;
    } else if (this.state === 'boundary' && continues) {
      this.report(
        'continuation',
        pageLsn,
        `page at ${formatLsn(pageLsn)} continues a record, but the previous record ended before it`,
      );
      this.restart();
      return undefined;
    }
    if (this.state !== 'resync') return start;
    const skip = continues ? maximumAlign(remaining) : 0;
    if (skip >= WAL_PAGE_SIZE - start) return undefined;
    this.state = 'boundary';
    return start + skip;
  }

  /**
   * Reads record bytes `data[from, to)`, which lie on one page starting at `pageOffset`: record
   * headers are collected, bodies go through the CRC in place.
   */
  private readRecords(data: Buffer, from: number, to: number, pageOffset: number, pageStart: bigint): void {
    let position = from;
    if (this.padding > 0) {
      const skip = Math.min(this.padding, to - position);
      this.padding -= skip;
      position += skip;
    }
    while (position < to) {
      if (this.state === 'boundary') this.beginRecord(pageStart + BigInt(pageOffset + position - from));
      if (this.state === 'header') {
        const count = Math.min(RECORD_HEADER_SIZE - this.headerBytes, to - position);
        const before = this.headerBytes;
        copySmall(data, position, this.recordHeader, this.headerBytes, count);
        this.headerBytes += count;
        this.recordRead = this.headerBytes;
        position += count;
        if (before < 4 && this.headerBytes >= 4 && !this.checkLength()) return;
        if (this.headerBytes < RECORD_HEADER_SIZE) return;
        this.state = 'body';
      }
      if (this.state !== 'body') return;
      const count = Math.min(this.recordLength - this.recordRead, to - position);
      this.crc = continueCrc32c(this.crc, data, position, position + count);
      this.recordRead += count;
      position += count;
      if (this.recordRead < this.recordLength) return;
      this.finishRecord();
      const aligned = maximumAlign(pageOffset + position - from) - (pageOffset + position - from);
      const skip = Math.min(aligned, to - position);
      position += skip;
      this.padding = aligned - skip;
    }
  }

  private beginRecord(lsn: bigint): void {
    this.recordStart = lsn;
    this.recordLength = 0;
    this.recordRead = 0;
    this.headerBytes = 0;
    this.crc = 0;
    this.state = 'header';
  }

  /** Checks `xl_tot_len` once its four bytes are in: zero is the end of the WAL written so far. */
  private checkLength(): boolean {
    const length = this.recordHeader.readUInt32LE(0);
    if (length === 0) {
      this.endOfWal(this.recordStart);
      return false;
    }
    if (length < RECORD_HEADER_SIZE || length > RECORD_MAXIMUM_LENGTH) {
      this.report(
        'record',
        this.recordStart,
        `invalid record length ${length} at ${formatLsn(this.recordStart)}`,
      );
      this.restart();
      return false;
    }
    this.recordLength = length;
    return true;
  }

  private finishRecord(): void {
    const header = this.recordHeader;
    const computed = continueCrc32c(this.crc, header, 0, RECORD_CRC_OFFSET);
    const stored = header.readUInt32LE(RECORD_CRC_OFFSET);
    if (computed !== stored) {
      this.report(
        'record-crc',
        this.recordStart,
        `incorrect CRC-32C in record at ${formatLsn(this.recordStart)}: stored ${hex8(stored)}, computed ${hex8(computed)}`,
      );
      this.restart();
      return;
    }
    const previous = header.readBigUInt64LE(8);
    const linked =
      this.previousRecord === undefined ? previous < this.recordStart : previous === this.previousRecord;
    if (!linked) {
      const expected =
        this.previousRecord === undefined ? '' : ` (expected ${formatLsn(this.previousRecord)})`;
      this.report(
        'record',
        this.recordStart,
        `record with incorrect prev-link ${formatLsn(previous)} at ${formatLsn(this.recordStart)}${expected}`,
      );
      this.restart();
      return;
    }
    this.previousRecord = this.recordStart;
    this.lastRecordEnd = this.recordStart + BigInt(this.recordLength);
    const isSwitch = header[17] === RM_XLOG_ID && (header[16]! & 0xf0) === XLOG_SWITCH;
    this.state = isSwitch ? 'switched' : 'boundary';
  }

  /** Zeros where a record or page should be: the end of a partial's WAL, or a damaged segment. */
  private endOfWal(lsn: bigint): void {
    const file = this.file!;
    if (!file.partial) {
      this.report(
        'truncated-segment',
        lsn,
        `WAL ends at ${formatLsn(lsn)} inside the completed segment "${file.name}"`,
      );
    }
    this.state = 'ended';
  }
}

/** A header's few bytes: a loop costs less than Buffer#copy's call for 24 or 40 bytes. */
function copySmall(source: Buffer, from: number, target: Buffer, to: number, count: number): void {
  for (let index = 0; index < count; index++) target[to + index] = source[from + index]!;
}

function hex8(value: number): string {
  return value.toString(16).toUpperCase().padStart(8, '0');
}
