import { MessageWriter } from '../io/writer.js';
import { BackendMessageCode } from '../message-codes.js';
import { decodeNoticeFields, type NoticeFields, writeNoticeFields } from './notice-fields.js';

/** 'E': the command failed; after a FATAL the server closes the connection. */
export interface ErrorResponse {
  type: 'ErrorResponse';
  fields: NoticeFields;
}

export function decodeErrorResponse(payload: Buffer): ErrorResponse {
  return { type: 'ErrorResponse', fields: decodeNoticeFields(payload, 'ErrorResponse') };
}

export function encodeErrorResponse(message: Omit<ErrorResponse, 'type'>): Buffer {
  const writer = new MessageWriter(256);
  writeNoticeFields(writer, message.fields);
  return writer.finish(BackendMessageCode.ErrorResponse);
}
