import { MessageWriter } from '../io/writer.js';
import { BackendMessageCode } from '../message-codes.js';
import { decodeNoticeFields, type NoticeFields, writeNoticeFields } from './notice-fields.js';

/** 'N': a warning or notice; the command goes on. Same fields as ErrorResponse. */
export interface NoticeResponse {
  type: 'NoticeResponse';
  fields: NoticeFields;
}

export function decodeNoticeResponse(payload: Buffer): NoticeResponse {
  return { type: 'NoticeResponse', fields: decodeNoticeFields(payload, 'NoticeResponse') };
}

export function encodeNoticeResponse(message: Omit<NoticeResponse, 'type'>): Buffer {
  const writer = new MessageWriter(256);
  writeNoticeFields(writer, message.fields);
  return writer.finish(BackendMessageCode.NoticeResponse);
}
