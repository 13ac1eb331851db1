import { expectLength } from '../io/reader.js';
import { BackendMessageCode } from '../message-codes.js';

/** 'I': the query string was empty. */
export interface EmptyQueryResponse {
  type: 'EmptyQueryResponse';
}

export function decodeEmptyQueryResponse(payload: Buffer): EmptyQueryResponse {
  expectLength('EmptyQueryResponse', payload, 0);
  return { type: 'EmptyQueryResponse' };
}

export function encodeEmptyQueryResponse(): Buffer {
  return Buffer.from([BackendMessageCode.EmptyQueryResponse, 0, 0, 0, 4]);
}
