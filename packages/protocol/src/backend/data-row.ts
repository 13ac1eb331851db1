import { ProtocolError } from '../errors.js';
import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { BackendMessageCode } from '../message-codes.js';

/** 'D': one row; each value is a view of the payload, or null for SQL NULL. */
export interface DataRow {
  type: 'DataRow';
  values: (Buffer | null)[];
}

export function decodeDataRow(payload: Buffer): DataRow {
  const reader = new MessageReader(payload, 'DataRow');
  const count = reader.int16('the column count');
  // Every column needs at least its 4-byte length, so a lying count fails before any allocation.
  if (count < 0 || count * 4 > reader.remaining) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      `DataRow announces ${count} columns, which cannot fit in its ${payload.length} bytes`,
    );
  }
  const values: (Buffer | null)[] = [];
  for (let index = 0; index < count; index++) {
    const length = reader.int32('a column length');
    if (length === -1) {
      values.push(null);
    } else if (length < 0) {
      throw new ProtocolError(
        'WAL_ERR_PROTOCOL_INVALID_FIELD',
        `DataRow column ${index} has an invalid length ${length}`,
      );
    } else {
      values.push(reader.bytes(length, `column ${index}`));
    }
  }
  reader.end();
  return { type: 'DataRow', values };
}

export function encodeDataRow(message: Omit<DataRow, 'type'>): Buffer {
  let size = 2;
  for (const value of message.values) size += 4 + (value?.length ?? 0);
  const writer = new MessageWriter(size + 5);
  writer.int16(message.values.length);
  for (const value of message.values) {
    if (value === null) writer.int32(-1);
    else writer.int32(value.length).bytes(value);
  }
  return writer.finish(BackendMessageCode.DataRow);
}
