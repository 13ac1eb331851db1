import { writeInt64 } from '../io/integers.js';
import { expectLength } from '../io/reader.js';
import { ReplicationMessageType } from '../message-codes.js';

/** 'p' request primary status (PostgreSQL 19+): `[0] 'p', [1..8] sendTime` (9 bytes). */
export interface RequestPrimaryStatus {
  sendTime: bigint;
}

export const REQUEST_PRIMARY_STATUS_LENGTH = 9;

export function encodeRequestPrimaryStatus(request: RequestPrimaryStatus): Buffer {
  const payload = Buffer.allocUnsafe(REQUEST_PRIMARY_STATUS_LENGTH);
  payload[0] = ReplicationMessageType.RequestPrimaryStatus;
  writeInt64(payload, request.sendTime, 1, 'sendTime');
  return payload;
}

export function decodeRequestPrimaryStatus(payload: Buffer): RequestPrimaryStatus {
  expectLength('RequestPrimaryStatus', payload, REQUEST_PRIMARY_STATUS_LENGTH);
  return { sendTime: payload.readBigInt64BE(1) };
}
