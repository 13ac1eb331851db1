import { MessageWriter } from '../io/writer.js';
import { BackendMessageCode } from '../message-codes.js';

/** 'd' CopyData, sent by both sides. In replication it carries the replication sub-messages. */
export interface CopyData {
  type: 'CopyData';
  /** A view of the frame's payload: valid as long as the payload is (ADR 0001). */
  data: Buffer;
}

export function decodeCopyData(payload: Buffer): CopyData {
  return { type: 'CopyData', data: payload };
}

export function encodeCopyData(message: Pick<CopyData, 'data'>): Buffer {
  return new MessageWriter(message.data.length + 5).bytes(message.data).finish(BackendMessageCode.CopyData);
}
