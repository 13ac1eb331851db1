import { ProtocolError } from '../errors.js';
import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { BackendMessageCode } from '../message-codes.js';

export interface FieldDescription {
  name: string;
  /** 0 when the column is not a table column (always so for replication commands). */
  tableOid: number;
  columnNumber: number;
  typeOid: number;
  /** pg_type.typlen: negative for variable-width types. */
  typeSize: number;
  typeModifier: number;
  /** 0 = text, 1 = binary. */
  format: number;
}

/** 'T': the columns of the rows that follow. */
export interface RowDescription {
  type: 'RowDescription';
  fields: FieldDescription[];
}

/** Each field needs at least its name's NUL and 18 bytes of fixed fields. */
const MINIMUM_FIELD_LENGTH = 19;

export function decodeRowDescription(payload: Buffer): RowDescription {
  const reader = new MessageReader(payload, 'RowDescription');
  const count = reader.int16('the field count');
  if (count < 0 || count * MINIMUM_FIELD_LENGTH > reader.remaining) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      `RowDescription announces ${count} fields, which cannot fit in its ${payload.length} bytes`,
    );
  }
  const fields: FieldDescription[] = [];
  for (let index = 0; index < count; index++) {
    fields.push({
      name: reader.cstring('a field name'),
      tableOid: reader.uint32('the table OID'),
      columnNumber: reader.int16('the column number'),
      typeOid: reader.uint32('the type OID'),
      typeSize: reader.int16('the type size'),
      typeModifier: reader.int32('the type modifier'),
      format: reader.int16('the format code'),
    });
  }
  reader.end();
  return { type: 'RowDescription', fields };
}

export function encodeRowDescription(message: Omit<RowDescription, 'type'>): Buffer {
  const writer = new MessageWriter(64 * (message.fields.length + 1));
  writer.int16(message.fields.length);
  for (const field of message.fields) {
    writer
      .cstring(field.name)
      .int32(field.tableOid)
      .int16(field.columnNumber)
      .int32(field.typeOid)
      .int16(field.typeSize)
      .int32(field.typeModifier)
      .int16(field.format);
  }
  return writer.finish(BackendMessageCode.RowDescription);
}
