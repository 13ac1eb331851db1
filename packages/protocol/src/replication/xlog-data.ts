import { writeInt64, writeUint64 } from '../io/integers.js';
import { expectMinimumLength } from '../io/reader.js';
import { ReplicationMessageType } from '../message-codes.js';

/**
 * 'w' XLogData (renamed WALData in PostgreSQL 19): WAL bytes from the server.
 * `[0] 'w', [1..8] dataStart, [9..16] walEnd, [17..24] sendTime, [25..] WAL` (spec §3.4).
 */
export interface XLogData {
  type: 'XLogData';
  /** LSN of the first byte of `data`. */
  dataStart: bigint;
  /** The server's current end of WAL (its send-request pointer), not the end of this chunk. */
  walEnd: bigint;
  /** Microseconds since 2000-01-01 UTC (see pg-time.ts). */
  sendTime: bigint;
  /** A view of the CopyData payload: valid as long as that payload is (ADR 0001). */
  data: Buffer;
}

export interface XLogDataHeader {
  dataStart: bigint;
  walEnd: bigint;
  sendTime: bigint;
}

export const XLOG_DATA_HEADER_LENGTH = 25;

/** `payload` is the whole CopyData payload including the 'w' byte. */
export function decodeXLogData(payload: Buffer): XLogData {
  expectMinimumLength('XLogData', payload, XLOG_DATA_HEADER_LENGTH);
  return {
    type: 'XLogData',
    dataStart: payload.readBigUInt64BE(1),
    walEnd: payload.readBigUInt64BE(9),
    sendTime: payload.readBigInt64BE(17),
    data: payload.subarray(XLOG_DATA_HEADER_LENGTH),
  };
}

/**
 * Writes the 25-byte header ('w' and three Int64) at `offset`, so a server can place WAL bytes
 * right behind it in one buffer. Returns the offset after the header.
 */
export function encodeXLogDataHeader(target: Buffer, offset: number, header: XLogDataHeader): number {
  target[offset] = ReplicationMessageType.XLogData;
  writeUint64(target, header.dataStart, offset + 1, 'dataStart');
  writeUint64(target, header.walEnd, offset + 9, 'walEnd');
  writeInt64(target, header.sendTime, offset + 17, 'sendTime');
  return offset + XLOG_DATA_HEADER_LENGTH;
}

/** A whole XLogData CopyData payload: header plus one copy of `data`. */
export function encodeXLogData(message: XLogDataHeader & { data: Uint8Array }): Buffer {
  const payload = Buffer.allocUnsafe(XLOG_DATA_HEADER_LENGTH + message.data.length);
  encodeXLogDataHeader(payload, 0, message);
  payload.set(message.data, XLOG_DATA_HEADER_LENGTH);
  return payload;
}
