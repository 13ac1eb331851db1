import { ProtocolError } from '../errors.js';
import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { BackendMessageCode } from '../message-codes.js';

/**
 * 'W' CopyBothResponse (START_REPLICATION), 'H' CopyOutResponse, 'G' CopyInResponse share one layout:
 * `Int8 overall format, Int16 column count, Int16 format per column`.
 */
export interface CopyResponse {
  type: 'CopyBothResponse' | 'CopyOutResponse' | 'CopyInResponse';
  /** 0 = text, 1 = binary. */
  format: number;
  columnFormats: number[];
}

export type CopyBothResponse = CopyResponse & { type: 'CopyBothResponse' };
export type CopyOutResponse = CopyResponse & { type: 'CopyOutResponse' };
export type CopyInResponse = CopyResponse & { type: 'CopyInResponse' };

const CODES = {
  CopyBothResponse: BackendMessageCode.CopyBothResponse,
  CopyOutResponse: BackendMessageCode.CopyOutResponse,
  CopyInResponse: BackendMessageCode.CopyInResponse,
} as const;

function decodeCopyResponse<Type extends CopyResponse['type']>(
  type: Type,
  payload: Buffer,
): CopyResponse & { type: Type } {
  const reader = new MessageReader(payload, type);
  const format = reader.uint8('the overall format');
  const count = reader.int16('the column count');
  if (count < 0 || count * 2 !== reader.remaining) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      `${type} announces ${count} columns, so it must be ${3 + Math.max(count, 0) * 2} bytes, got ${payload.length}`,
    );
  }
  const columnFormats: number[] = [];
  for (let index = 0; index < count; index++) columnFormats.push(reader.int16('a column format'));
  reader.end();
  return { type, format, columnFormats };
}

export function encodeCopyResponse(message: CopyResponse): Buffer {
  const writer = new MessageWriter(8 + message.columnFormats.length * 2);
  writer.int8(message.format).int16(message.columnFormats.length);
  for (const format of message.columnFormats) writer.int16(format);
  return writer.finish(CODES[message.type]);
}

export const decodeCopyBothResponse = (payload: Buffer): CopyBothResponse =>
  decodeCopyResponse('CopyBothResponse', payload);
export const decodeCopyOutResponse = (payload: Buffer): CopyOutResponse =>
  decodeCopyResponse('CopyOutResponse', payload);
export const decodeCopyInResponse = (payload: Buffer): CopyInResponse =>
  decodeCopyResponse('CopyInResponse', payload);
