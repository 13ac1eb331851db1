import { formatLsn } from '@wal/protocol';
import {
  majorVersionForPageMagic,
  type PageHeader,
  PageInfo,
  PageInfoVersion19,
  SHORT_PAGE_HEADER_SIZE,
  WAL_PAGE_SIZE,
} from '@wal/protocol/wal-format';
import type { ProblemKind } from './problems.js';

/** A page header problem: the page cannot be used. */
export interface PageFault {
  kind: ProblemKind;
  message: string;
}

/** What a page must agree with (`XLogReaderValidatePageHeader`, spec/archive.md §3.3). */
export interface PageExpectation {
  pageAddress: bigint;
  /** Whether the page is the first of its segment (it must carry the long header). */
  segmentStart: boolean;
  segmentSize: number;
  /** The timeline in the file's name: no page may be from a later one. */
  fileTimeline: number;
  /** The magic of the segment's first page, once known. */
  magic: number | undefined;
}

/** The valid `xlp_info` bits for a magic (PostgreSQL 19 dropped one and moved another). */
const flagsByMagic = new Map<number, { all: number; overwrite: number }>();

export function pageFlags(magic: number): { all: number; overwrite: number } {
  let flags = flagsByMagic.get(magic);
  if (flags === undefined) {
    flags = flagsFor(magic);
    flagsByMagic.set(magic, flags);
  }
  return flags;
}

function flagsFor(magic: number): { all: number; overwrite: number } {
  const major = majorVersionForPageMagic(magic) ?? 0;
  return major >= 19
    ? { all: PageInfoVersion19.ALL_FLAGS, overwrite: PageInfoVersion19.FIRST_IS_OVERWRITE_CONTRECORD }
    : { all: PageInfo.ALL_FLAGS, overwrite: PageInfo.FIRST_IS_OVERWRITE_CONTRECORD };
}

/** The first thing wrong with a page header, in `XLogReaderValidatePageHeader`'s order; or undefined. */
export function checkPageHeader(header: PageHeader, expected: PageExpectation): PageFault | undefined {
  const at = { toString: () => formatLsn(expected.pageAddress) };
  // A known magic equal to the segment's first page is checked once per segment, not per page.
  if (header.magic !== expected.magic && majorVersionForPageMagic(header.magic) === undefined) {
    return { kind: 'page-header', message: `invalid magic number ${hex4(header.magic)} in page at ${at}` };
  }
  if (expected.magic !== undefined && header.magic !== expected.magic) {
    return {
      kind: 'page-header',
      message: `magic number ${hex4(header.magic)} in page at ${at} differs from the segment's ${hex4(expected.magic)} (another PostgreSQL version)`,
    };
  }
  if ((header.info & ~pageFlags(header.magic).all) !== 0) {
    return { kind: 'page-header', message: `invalid info bits ${hex4(header.info)} in page at ${at}` };
  }
  if (expected.segmentStart && header.long === undefined) {
    return {
      kind: 'page-header',
      message: `invalid info bits ${hex4(header.info)} in page at ${at}: the first page of a segment has no long header`,
    };
  }
  if (header.long !== undefined && expected.segmentStart) {
    if (header.long.segmentSize !== expected.segmentSize) {
      return {
        kind: 'long-header',
        message: `segment size ${header.long.segmentSize} in the long page header at ${at} differs from the archive's ${expected.segmentSize}`,
      };
    }
    if (header.long.blockSize !== WAL_PAGE_SIZE) {
      return {
        kind: 'long-header',
        message: `block size ${header.long.blockSize} in the long page header at ${at} is not ${WAL_PAGE_SIZE}`,
      };
    }
  }
  if (header.pageAddress !== expected.pageAddress) {
    return {
      kind: 'page-header',
      message: `unexpected page address ${formatLsn(header.pageAddress)} in page at ${at}`,
    };
  }
  if (header.timeline > expected.fileTimeline || header.timeline === 0) {
    return {
      kind: 'page-header',
      message: `page at ${at} has timeline ${header.timeline}, which its file (timeline ${expected.fileTimeline}) cannot hold`,
    };
  }
  return undefined;
}

/** Whether a page header is all zeros: the end of the WAL written so far, or the rest after a switch. */
export function isZeroHeader(page: Buffer): boolean {
  for (let index = 0; index < SHORT_PAGE_HEADER_SIZE; index++) if (page[index] !== 0) return false;
  return true;
}

function hex4(value: number): string {
  return value.toString(16).toUpperCase().padStart(4, '0');
}
