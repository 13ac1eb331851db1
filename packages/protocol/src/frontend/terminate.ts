import { expectLength } from '../io/reader.js';
import { FrontendMessageCode } from '../message-codes.js';

/** 'X': the client is closing the connection. */
export interface Terminate {
  type: 'Terminate';
}

export function encodeTerminate(): Buffer {
  return Buffer.from([FrontendMessageCode.Terminate, 0, 0, 0, 4]);
}

export function decodeTerminate(payload: Buffer): Terminate {
  expectLength('Terminate', payload, 0);
  return { type: 'Terminate' };
}
