import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { FrontendMessageCode } from '../message-codes.js';

/** 'f': the client aborts a COPY FROM STDIN with a reason. */
export interface CopyFail {
  type: 'CopyFail';
  message: string;
}

export function encodeCopyFail(message: Omit<CopyFail, 'type'>): Buffer {
  return new MessageWriter(64).cstring(message.message).finish(FrontendMessageCode.CopyFail);
}

export function decodeCopyFail(payload: Buffer): CopyFail {
  const reader = new MessageReader(payload, 'CopyFail');
  const message = reader.cstring('the failure message');
  reader.end();
  return { type: 'CopyFail', message };
}
