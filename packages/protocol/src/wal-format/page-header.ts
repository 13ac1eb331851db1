import {
  LONG_PAGE_HEADER_SIZE,
  PAGE_MAGIC_BY_MAJOR_VERSION,
  PageInfo,
  SHORT_PAGE_HEADER_SIZE,
} from './constants.js';
import { WalFormatError } from './errors.js';

/** The long-header part present on the first page of each segment (`XLogLongPageHeaderData`). */
export interface LongPageHeaderFields {
  /** `xlp_sysid`: equals the IDENTIFY_SYSTEM systemid. */
  systemId: bigint;
  /** `xlp_seg_size`. */
  segmentSize: number;
  /** `xlp_xlog_blcksz`. */
  blockSize: number;
}

/** `XLogPageHeaderData`, plus the long fields when `info` has `XLP_LONG_HEADER`. */
export interface PageHeader {
  /** `xlp_magic`: the WAL format version (see {@link PAGE_MAGIC_BY_MAJOR_VERSION}). */
  magic: number;
  /** `xlp_info` flag bits ({@link PageInfo}). */
  info: number;
  /** `xlp_tli`: timeline of the first record on the page. */
  timeline: number;
  /** `xlp_pageaddr`: the LSN of the page start. */
  pageAddress: bigint;
  /** `xlp_rem_len`: bytes of a record continued from the previous page (0 when none). */
  remainingLength: number;
  /** Present exactly when `info & XLP_LONG_HEADER`. */
  long?: LongPageHeaderFields;
}

/** Size of the header described by `info`: 40 with `XLP_LONG_HEADER`, else 24. */
export function pageHeaderSize(info: number): number {
  return info & PageInfo.LONG_HEADER ? LONG_PAGE_HEADER_SIZE : SHORT_PAGE_HEADER_SIZE;
}

/**
 * Write `header` at `target[offset]` (24 or 40 bytes, padding zeroed) and return the bytes written.
 * The long fields are required exactly when `info` has `XLP_LONG_HEADER`, so a header never
 * contradicts its own flag.
 */
export function encodePageHeader(target: Buffer, offset: number, header: PageHeader): number {
  const isLong = (header.info & PageInfo.LONG_HEADER) !== 0;
  if (isLong !== (header.long !== undefined)) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_PAGE_HEADER',
      isLong
        ? 'Page header has XLP_LONG_HEADER in info but no long fields (systemId, segmentSize, blockSize).'
        : 'Page header has long fields but info lacks XLP_LONG_HEADER (0x0002).',
    );
  }
  const size = isLong ? LONG_PAGE_HEADER_SIZE : SHORT_PAGE_HEADER_SIZE;
  if (offset < 0 || offset + size > target.length) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_BUFFER_TOO_SHORT',
      `Page header needs ${size} bytes at offset ${offset}, the buffer has ${target.length}.`,
    );
  }
  target.writeUInt16LE(header.magic, offset);
  target.writeUInt16LE(header.info, offset + 2);
  target.writeUInt32LE(header.timeline, offset + 4);
  target.writeBigUInt64LE(header.pageAddress, offset + 8);
  target.writeUInt32LE(header.remainingLength, offset + 16);
  target.writeUInt32LE(0, offset + 20);
  if (header.long !== undefined) {
    target.writeBigUInt64LE(header.long.systemId, offset + 24);
    target.writeUInt32LE(header.long.segmentSize, offset + 32);
    target.writeUInt32LE(header.long.blockSize, offset + 36);
  }
  return size;
}

/** Read a page header at `source[offset]`; the long fields are read when its info says so. */
export function decodePageHeader(source: Uint8Array, offset = 0): PageHeader {
  // A Buffer is read as it is: a reader that decodes every page header allocates nothing.
  const view = Buffer.isBuffer(source)
    ? source
    : Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  if (offset < 0 || offset + SHORT_PAGE_HEADER_SIZE > view.length) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_BUFFER_TOO_SHORT',
      `A WAL page header needs at least ${SHORT_PAGE_HEADER_SIZE} bytes at offset ${offset}, got ${Math.max(0, view.length - offset)}.`,
    );
  }
  const info = view.readUInt16LE(offset + 2);
  const header: PageHeader = {
    magic: view.readUInt16LE(offset),
    info,
    timeline: view.readUInt32LE(offset + 4),
    pageAddress: view.readBigUInt64LE(offset + 8),
    remainingLength: view.readUInt32LE(offset + 16),
  };
  if (info & PageInfo.LONG_HEADER) {
    if (offset + LONG_PAGE_HEADER_SIZE > view.length) {
      throw new WalFormatError(
        'WAL_ERR_WAL_FORMAT_BUFFER_TOO_SHORT',
        `A long WAL page header needs ${LONG_PAGE_HEADER_SIZE} bytes at offset ${offset}, got ${view.length - offset}.`,
      );
    }
    header.long = {
      systemId: view.readBigUInt64LE(offset + 24),
      segmentSize: view.readUInt32LE(offset + 32),
      blockSize: view.readUInt32LE(offset + 36),
    };
  }
  return header;
}

/**
 * `XLOG_PAGE_MAGIC` of a server version: a major (14..19) or a `server_version_num`-style number
 * (150008, 180001). Throws for versions whose magic we have not verified.
 */
export function pageMagicForVersion(version: number): number {
  const major = version >= 1000 ? Math.floor(version / 10000) : version;
  const magic = PAGE_MAGIC_BY_MAJOR_VERSION[major];
  if (magic === undefined) {
    const known = Object.keys(PAGE_MAGIC_BY_MAJOR_VERSION).join(', ');
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_UNKNOWN_VERSION',
      `No known XLOG_PAGE_MAGIC for server version ${version}; known majors: ${known}.`,
    );
  }
  return magic;
}

/** The major version a page magic belongs to, or undefined for a magic we do not know. */
export function majorVersionForPageMagic(magic: number): number | undefined {
  for (const [major, value] of Object.entries(PAGE_MAGIC_BY_MAJOR_VERSION)) {
    if (value === magic) return Number(major);
  }
  return undefined;
}
