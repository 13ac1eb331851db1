import { ProtocolError } from '../errors.js';
import { writeInt64, writeUint64 } from '../io/integers.js';
import { expectLength } from '../io/reader.js';
import { FrontendMessageCode, ReplicationMessageType } from '../message-codes.js';

/**
 * 'r' standby status update, client to server:
 * `[0] 'r', [1..8] write, [9..16] flush, [17..24] apply, [25..32] sendTime, [33] replyRequested`.
 */
export interface StandbyStatusUpdate {
  /** Last byte + 1 received and written. */
  writeLsn: bigint;
  /** Last byte + 1 made durable; 0 when not reported. Never ahead of what the sink synced. */
  flushLsn: bigint;
  applyLsn: bigint;
  sendTime: bigint;
  replyRequested: boolean;
}

export const STANDBY_STATUS_UPDATE_LENGTH = 34;
/** 'd', Int32 length, then the 34-byte payload. */
export const STANDBY_STATUS_UPDATE_FRAME_LENGTH = 39;

function writePayload(target: Buffer, offset: number, status: StandbyStatusUpdate): void {
  target[offset] = ReplicationMessageType.StandbyStatusUpdate;
  writeUint64(target, status.writeLsn, offset + 1, 'writeLsn');
  writeUint64(target, status.flushLsn, offset + 9, 'flushLsn');
  writeUint64(target, status.applyLsn, offset + 17, 'applyLsn');
  writeInt64(target, status.sendTime, offset + 25, 'sendTime');
  target[offset + 33] = status.replyRequested ? 1 : 0;
}

/** The 34-byte CopyData payload. */
export function encodeStandbyStatusUpdate(status: StandbyStatusUpdate): Buffer {
  const payload = Buffer.allocUnsafe(STANDBY_STATUS_UPDATE_LENGTH);
  writePayload(payload, 0, status);
  return payload;
}

/**
 * Writes the whole 39-byte CopyData frame into `target` (which the caller preallocates) and returns
 * `target.subarray(0, 39)`: no allocation per status update. `socket.write` keeps a reference to
 * the bytes until they are flushed, so reuse `target` only after the write's callback has run.
 */
export function writeStandbyStatusUpdateFrame(target: Buffer, status: StandbyStatusUpdate): Buffer {
  if (target.length < STANDBY_STATUS_UPDATE_FRAME_LENGTH) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_VALUE',
      `A standby status update frame needs a ${STANDBY_STATUS_UPDATE_FRAME_LENGTH}-byte buffer, got ${target.length}`,
    );
  }
  target[0] = FrontendMessageCode.CopyData;
  target.writeUInt32BE(4 + STANDBY_STATUS_UPDATE_LENGTH, 1);
  writePayload(target, 5, status);
  return target.subarray(0, STANDBY_STATUS_UPDATE_FRAME_LENGTH);
}

export function decodeStandbyStatusUpdate(payload: Buffer): StandbyStatusUpdate {
  expectLength('StandbyStatusUpdate', payload, STANDBY_STATUS_UPDATE_LENGTH);
  const reply = payload[33]!;
  if (reply > 1) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      `StandbyStatusUpdate replyRequested must be 0 or 1, got ${reply}`,
    );
  }
  return {
    writeLsn: payload.readBigUInt64BE(1),
    flushLsn: payload.readBigUInt64BE(9),
    applyLsn: payload.readBigUInt64BE(17),
    sendTime: payload.readBigInt64BE(25),
    replyRequested: reply === 1,
  };
}
