import { checkCancelKeyLength } from '../backend/backend-key-data.js';
import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { StartupRequestCode } from '../message-codes.js';

/**
 * Sent on a new connection to cancel a running query: `Int32 length, Int32 80877102, Int32 pid,
 * key`. The key is 4 bytes under protocol 3.0 and 4 to 256 bytes under 3.2.
 */
export interface CancelRequest {
  type: 'CancelRequest';
  processId: number;
  secretKey: Buffer;
}

export function encodeCancelRequest(message: Omit<CancelRequest, 'type'>): Buffer {
  checkCancelKeyLength('CancelRequest', message.secretKey.length);
  return new MessageWriter(16 + message.secretKey.length)
    .int32(StartupRequestCode.CancelRequest)
    .int32(message.processId)
    .bytes(message.secretKey)
    .finishUntyped();
}

/** `payload` is the whole packet after the length, starting with the request code. */
export function decodeCancelRequest(payload: Buffer): CancelRequest {
  const reader = new MessageReader(payload, 'CancelRequest');
  reader.int32('the request code');
  const processId = reader.int32('the process id');
  const secretKey = reader.rest();
  checkCancelKeyLength('CancelRequest', secretKey.length);
  return { type: 'CancelRequest', processId, secretKey };
}
