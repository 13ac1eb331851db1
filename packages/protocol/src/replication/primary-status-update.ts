import { writeInt64, writeUint64 } from '../io/integers.js';
import { expectLength } from '../io/reader.js';
import { ReplicationMessageType } from '../message-codes.js';

/**
 * 's' primary status update (PostgreSQL 19+), sent only in reply to a 'p' request:
 * `[0] 's', Int64 latest WAL write LSN, Int64 oldest xid in commit (FullTransactionId),
 * Int64 next FullTransactionId, Int64 sendTime` (33 bytes).
 */
export interface PrimaryStatusUpdate {
  type: 'PrimaryStatusUpdate';
  latestWalWriteLsn: bigint;
  oldestXidInCommit: bigint;
  nextXid: bigint;
  sendTime: bigint;
}

export const PRIMARY_STATUS_UPDATE_LENGTH = 33;

export function decodePrimaryStatusUpdate(payload: Buffer): PrimaryStatusUpdate {
  expectLength('PrimaryStatusUpdate', payload, PRIMARY_STATUS_UPDATE_LENGTH);
  return {
    type: 'PrimaryStatusUpdate',
    latestWalWriteLsn: payload.readBigUInt64BE(1),
    oldestXidInCommit: payload.readBigUInt64BE(9),
    nextXid: payload.readBigUInt64BE(17),
    sendTime: payload.readBigInt64BE(25),
  };
}

export function encodePrimaryStatusUpdate(message: Omit<PrimaryStatusUpdate, 'type'>): Buffer {
  const payload = Buffer.allocUnsafe(PRIMARY_STATUS_UPDATE_LENGTH);
  payload[0] = ReplicationMessageType.PrimaryStatusUpdate;
  writeUint64(payload, message.latestWalWriteLsn, 1, 'latestWalWriteLsn');
  writeUint64(payload, message.oldestXidInCommit, 9, 'oldestXidInCommit');
  writeUint64(payload, message.nextXid, 17, 'nextXid');
  writeInt64(payload, message.sendTime, 25, 'sendTime');
  return payload;
}
