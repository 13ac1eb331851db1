/**
 * `@wal/protocol/wal-format`: PostgreSQL's WAL page and record format, pure (no I/O). Used by the fake
 * walsender to produce valid WAL and, later, by a verifier of received segments.
 * See docs/adr/0002-wal-format-module.md.
 */
export {
  BLOCK_ID_DATA_LONG,
  BLOCK_ID_DATA_SHORT,
  LONG_PAGE_HEADER_SIZE,
  MAXIMUM_ALIGNMENT,
  PAGE_MAGIC_BY_MAJOR_VERSION,
  PageInfo,
  PageInfoVersion19,
  RECORD_CRC_OFFSET,
  RECORD_HEADER_SIZE,
  RECORD_MAXIMUM_LENGTH,
  RM_XLOG_ID,
  SHORT_PAGE_HEADER_SIZE,
  WAL_PAGE_SIZE,
  XLOG_NOOP,
  XLOG_SWITCH,
} from './constants.js';
export { CRC32C_INITIAL, crc32c, finishCrc32c, updateCrc32c } from './crc32c.js';
export { WalFormatError } from './errors.js';
export {
  createWalGenerator,
  type GeneratedRecord,
  generateWal,
  WalGenerator,
  type WalGeneratorOptions,
} from './generator.js';
export {
  decodePageHeader,
  encodePageHeader,
  type LongPageHeaderFields,
  majorVersionForPageMagic,
  type PageHeader,
  pageHeaderSize,
  pageMagicForVersion,
} from './page-header.js';
export {
  buildMainDataRecord,
  computeRecordCrc,
  decodeRecordHeader,
  encodeMainDataHeader,
  encodeRecordHeader,
  type MainDataRecordOptions,
  mainDataHeaderSize,
  mainDataRecordLength,
  maximumAlign,
  type RecordHeader,
} from './record.js';
