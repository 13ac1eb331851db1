import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { BackendMessageCode } from '../message-codes.js';

/** 'C': a command finished; the tag names it (e.g. 'IDENTIFY_SYSTEM', 'START_STREAMING'). */
export interface CommandComplete {
  type: 'CommandComplete';
  tag: string;
}

export function decodeCommandComplete(payload: Buffer): CommandComplete {
  const reader = new MessageReader(payload, 'CommandComplete');
  const tag = reader.cstring('the command tag');
  reader.end();
  return { type: 'CommandComplete', tag };
}

export function encodeCommandComplete(message: Omit<CommandComplete, 'type'>): Buffer {
  return new MessageWriter(32).cstring(message.tag).finish(BackendMessageCode.CommandComplete);
}
