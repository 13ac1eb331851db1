import { expectLength } from '../io/reader.js';
import { BackendMessageCode } from '../message-codes.js';

/** 'c' CopyDone, sent by both sides: this side has nothing more to send in the COPY. */
export interface CopyDone {
  type: 'CopyDone';
}

export function decodeCopyDone(payload: Buffer): CopyDone {
  expectLength('CopyDone', payload, 0);
  return { type: 'CopyDone' };
}

export function encodeCopyDone(): Buffer {
  return Buffer.from([BackendMessageCode.CopyDone, 0, 0, 0, 4]);
}
