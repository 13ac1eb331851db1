/**
 * Constants of PostgreSQL's WAL layout (`src/include/access/xlog_internal.h`, `xlogrecord.h`,
 * `pg_control.h`). All multi-byte fields of WAL are in the server's native byte order; like every
 * practical deployment we assume little-endian.
 */

/** `XLOG_BLCKSZ`: the WAL page size of every default build. */
export const WAL_PAGE_SIZE = 8192;

/** `SizeOfXLogShortPHD` = MAXALIGN(20): every page but the first of a segment. */
export const SHORT_PAGE_HEADER_SIZE = 24;

/** `SizeOfXLogLongPHD`: the first page of every segment also carries sysid, segment and block size. */
export const LONG_PAGE_HEADER_SIZE = 40;

/** `SizeOfXLogRecord`: the fixed record header. */
export const RECORD_HEADER_SIZE = 24;

/** Offset of `xl_crc` in the record header: the CRC covers the header bytes before it. */
export const RECORD_CRC_OFFSET = 20;

/** Records start on MAXALIGN boundaries (8 on every 64-bit platform). */
export const MAXIMUM_ALIGNMENT = 8;

/** `XLogRecordMaxSize` (1020 MB): the longest record a reader accepts. */
export const RECORD_MAXIMUM_LENGTH = 1020 * 1024 * 1024;

/** `xlp_info` flag bits as of PostgreSQL 14..18 (`xlog_internal.h`). */
export const PageInfo = {
  /** The page begins with the continuation of a record from the previous page. */
  FIRST_IS_CONTRECORD: 0x0001,
  /** The page carries the long header (first page of a segment). */
  LONG_HEADER: 0x0002,
  /** Backup blocks may be removed (set on every page while no base backup forces full pages); gone in 19. */
  BACKUP_REMOVABLE: 0x0004,
  /** The record continued here was overwritten (missing contrecord recovery), 14..18 value. */
  FIRST_IS_OVERWRITE_CONTRECORD: 0x0008,
  /** Every valid bit for 14..18. */
  ALL_FLAGS: 0x000f,
} as const;

/** PostgreSQL 19 removed `XLP_BKP_REMOVABLE` and moved OVERWRITE_CONTRECORD to 0x0004 (commit f68d7e7483). */
export const PageInfoVersion19 = {
  FIRST_IS_CONTRECORD: 0x0001,
  LONG_HEADER: 0x0002,
  FIRST_IS_OVERWRITE_CONTRECORD: 0x0004,
  ALL_FLAGS: 0x0007,
} as const;

/** `XLOG_PAGE_MAGIC` per major version: a WAL format identifier, bumped whenever the format changes. */
export const PAGE_MAGIC_BY_MAJOR_VERSION: Readonly<Record<number, number>> = {
  14: 0xd10d,
  15: 0xd110,
  16: 0xd113,
  17: 0xd116,
  18: 0xd118,
  19: 0xd121,
};

/** Resource manager id of the XLOG resource manager (`rmgrlist.h`). */
export const RM_XLOG_ID = 0;

/** `XLOG_NOOP` (`pg_control.h`): a record replay ignores; pg_waldump prints it as `XLOG NOOP`. */
export const XLOG_NOOP = 0x20;

/** `XLOG_SWITCH` (`pg_control.h`): the rest of the segment is unused. */
export const XLOG_SWITCH = 0x40;

/** Block ids of the record body (`xlogrecord.h`): main data with a one-byte or four-byte length. */
export const BLOCK_ID_DATA_SHORT = 255;
export const BLOCK_ID_DATA_LONG = 254;
