import {
  BLOCK_ID_DATA_LONG,
  BLOCK_ID_DATA_SHORT,
  RECORD_CRC_OFFSET,
  RECORD_HEADER_SIZE,
  RECORD_MAXIMUM_LENGTH,
  RM_XLOG_ID,
  XLOG_NOOP,
} from './constants.js';
import { CRC32C_INITIAL, finishCrc32c, updateCrc32c } from './crc32c.js';
import { WalFormatError } from './errors.js';

/** `XLogRecord` (`xlogrecord.h`): the 24-byte header in front of every record. */
export interface RecordHeader {
  /** `xl_tot_len`: the whole record, header included. */
  totalLength: number;
  /** `xl_xid`. */
  transactionId: number;
  /** `xl_prev`: LSN of the previous record. */
  previous: bigint;
  /** `xl_info`: low 4 bits generic, high 4 bits the resource manager's. */
  info: number;
  /** `xl_rmid`. */
  resourceManagerId: number;
  /** `xl_crc`: see {@link computeRecordCrc}. */
  crc: number;
}

/** Write a record header at `target[offset]` (24 bytes, padding zeroed). */
export function encodeRecordHeader(target: Buffer, offset: number, header: RecordHeader): void {
  if (offset < 0 || offset + RECORD_HEADER_SIZE > target.length) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_BUFFER_TOO_SHORT',
      `A WAL record header needs ${RECORD_HEADER_SIZE} bytes at offset ${offset}, the buffer has ${target.length}.`,
    );
  }
  target.writeUInt32LE(header.totalLength, offset);
  target.writeUInt32LE(header.transactionId, offset + 4);
  target.writeBigUInt64LE(header.previous, offset + 8);
  target[offset + 16] = header.info;
  target[offset + 17] = header.resourceManagerId;
  target[offset + 18] = 0;
  target[offset + 19] = 0;
  target.writeUInt32LE(header.crc, offset + RECORD_CRC_OFFSET);
}

/** Read a record header at `source[offset]`. */
export function decodeRecordHeader(source: Uint8Array, offset = 0): RecordHeader {
  const view = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  if (offset < 0 || offset + RECORD_HEADER_SIZE > view.length) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_BUFFER_TOO_SHORT',
      `A WAL record header needs ${RECORD_HEADER_SIZE} bytes at offset ${offset}, got ${Math.max(0, view.length - offset)}.`,
    );
  }
  return {
    totalLength: view.readUInt32LE(offset),
    transactionId: view.readUInt32LE(offset + 4),
    previous: view.readBigUInt64LE(offset + 8),
    info: view[offset + 16]!,
    resourceManagerId: view[offset + 17]!,
    crc: view.readUInt32LE(offset + RECORD_CRC_OFFSET),
  };
}

/**
 * The CRC PostgreSQL stores in `xl_crc` for a reassembled record (page headers removed): CRC-32C over
 * the bytes after the header first, then over the header up to `xl_crc` (`xlogreader.c`
 * ValidXLogRecord). `record` must hold the whole record (`xl_tot_len` bytes from `offset`).
 */
export function computeRecordCrc(record: Uint8Array, offset = 0): number {
  const view = Buffer.from(record.buffer, record.byteOffset, record.byteLength);
  if (offset + RECORD_HEADER_SIZE > view.length) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_BUFFER_TOO_SHORT',
      `A WAL record needs at least ${RECORD_HEADER_SIZE} bytes, got ${view.length - offset}.`,
    );
  }
  const totalLength = view.readUInt32LE(offset);
  if (totalLength < RECORD_HEADER_SIZE || offset + totalLength > view.length) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_RECORD_LENGTH',
      `WAL record xl_tot_len ${totalLength} does not fit: ${view.length - offset} bytes available, at least ${RECORD_HEADER_SIZE} needed.`,
    );
  }
  let state = updateCrc32c(CRC32C_INITIAL, view, offset + RECORD_HEADER_SIZE, offset + totalLength);
  state = updateCrc32c(state, view, offset, offset + RECORD_CRC_OFFSET);
  return finishCrc32c(state);
}

/** Bytes in front of the main data: block id 255 plus a one-byte length, or 254 plus a four-byte one. */
export function mainDataHeaderSize(dataLength: number): number {
  return dataLength <= 255 ? 2 : 5;
}

/** `xl_tot_len` of a record carrying only `dataLength` bytes of main data. */
export function mainDataRecordLength(dataLength: number): number {
  return RECORD_HEADER_SIZE + mainDataHeaderSize(dataLength) + dataLength;
}

/** Write the main-data block header (`XLogRecordDataHeaderShort` / `Long`) and return its size. */
export function encodeMainDataHeader(target: Buffer, offset: number, dataLength: number): number {
  if (dataLength <= 255) {
    target[offset] = BLOCK_ID_DATA_SHORT;
    target[offset + 1] = dataLength;
    return 2;
  }
  target[offset] = BLOCK_ID_DATA_LONG;
  target.writeUInt32LE(dataLength, offset + 1);
  return 5;
}

export interface MainDataRecordOptions {
  /** `xl_prev`. */
  previous: bigint;
  /** The main data (for XLOG_NOOP: anything; replay ignores it). */
  data: Uint8Array;
  resourceManagerId?: number;
  /** Default `XLOG_NOOP`. */
  info?: number;
  transactionId?: number;
}

/**
 * A complete record with no block references and only main data: by default `XLOG NOOP` of the XLOG
 * resource manager, which every pg_waldump decodes and replay ignores.
 */
export function buildMainDataRecord(options: MainDataRecordOptions): Buffer {
  const totalLength = mainDataRecordLength(options.data.length);
  if (totalLength > RECORD_MAXIMUM_LENGTH) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_RECORD_LENGTH',
      `A WAL record of ${totalLength} bytes exceeds XLogRecordMaxSize (${RECORD_MAXIMUM_LENGTH}).`,
    );
  }
  const record = Buffer.alloc(totalLength);
  encodeRecordHeader(record, 0, {
    totalLength,
    transactionId: options.transactionId ?? 0,
    previous: options.previous,
    info: options.info ?? XLOG_NOOP,
    resourceManagerId: options.resourceManagerId ?? RM_XLOG_ID,
    crc: 0,
  });
  const headerSize = encodeMainDataHeader(record, RECORD_HEADER_SIZE, options.data.length);
  record.set(options.data, RECORD_HEADER_SIZE + headerSize);
  record.writeUInt32LE(computeRecordCrc(record), RECORD_CRC_OFFSET);
  return record;
}

/** Round up to MAXALIGN (8). */
export function maximumAlign(value: number): number {
  const remainder = value % 8;
  return remainder === 0 ? value : value + 8 - remainder;
}
