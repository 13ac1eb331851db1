import { ProtocolError } from '../errors.js';
import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { BackendMessageCode } from '../message-codes.js';

/**
 * 'K': the process id and secret key a CancelRequest must quote. The key is 4 bytes under protocol
 * 3.0 and 4 to 256 bytes under 3.2 (PostgreSQL 18 sends 32; protocol.sgml "BackendKeyData").
 */
export interface BackendKeyData {
  type: 'BackendKeyData';
  processId: number;
  secretKey: Buffer;
}

export const MIN_CANCEL_KEY_LENGTH = 4;
export const MAX_CANCEL_KEY_LENGTH = 256;

export function checkCancelKeyLength(messageName: string, length: number): void {
  if (length < MIN_CANCEL_KEY_LENGTH || length > MAX_CANCEL_KEY_LENGTH) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      `${messageName} secret key must be ${MIN_CANCEL_KEY_LENGTH} to ${MAX_CANCEL_KEY_LENGTH} bytes, got ${length}`,
    );
  }
}

export function decodeBackendKeyData(payload: Buffer): BackendKeyData {
  const reader = new MessageReader(payload, 'BackendKeyData');
  const processId = reader.int32('the process id');
  const secretKey = reader.rest();
  checkCancelKeyLength('BackendKeyData', secretKey.length);
  return { type: 'BackendKeyData', processId, secretKey };
}

export function encodeBackendKeyData(message: Omit<BackendKeyData, 'type'>): Buffer {
  checkCancelKeyLength('BackendKeyData', message.secretKey.length);
  return new MessageWriter(4 + message.secretKey.length + 5)
    .int32(message.processId)
    .bytes(message.secretKey)
    .finish(BackendMessageCode.BackendKeyData);
}
