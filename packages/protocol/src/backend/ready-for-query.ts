import { ProtocolError } from '../errors.js';
import { expectLength } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { BackendMessageCode } from '../message-codes.js';

export type TransactionStatus = 'I' | 'T' | 'E';

/** 'Z': the server is ready for a new query; I = idle, T = in a transaction, E = failed transaction. */
export interface ReadyForQuery {
  type: 'ReadyForQuery';
  transactionStatus: TransactionStatus;
}

export function decodeReadyForQuery(payload: Buffer): ReadyForQuery {
  expectLength('ReadyForQuery', payload, 1);
  const status = String.fromCharCode(payload[0]!);
  if (status !== 'I' && status !== 'T' && status !== 'E') {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      `ReadyForQuery has an unknown transaction status byte 0x${payload[0]!.toString(16).padStart(2, '0')}; ` +
        "expected 'I', 'T' or 'E'",
    );
  }
  return { type: 'ReadyForQuery', transactionStatus: status };
}

export function encodeReadyForQuery(message: Omit<ReadyForQuery, 'type'>): Buffer {
  return new MessageWriter(8)
    .int8(message.transactionStatus.charCodeAt(0))
    .finish(BackendMessageCode.ReadyForQuery);
}
