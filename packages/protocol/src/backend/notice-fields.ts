import { MessageReader } from '../io/reader.js';
import type { MessageWriter } from '../io/writer.js';

/**
 * The fields of an ErrorResponse or NoticeResponse (protocol.sgml "Error and Notice Message
 * Fields"). All values are kept as the server's text, so nothing is lost when an error is shown.
 */
export interface NoticeFields {
  /** 'S': localized severity (ERROR, FATAL, PANIC, WARNING, NOTICE, ...). */
  severity: string;
  /** 'V': severity, never localized (PostgreSQL 9.6+). */
  severityNonLocalized?: string;
  /** 'C': the SQLSTATE. */
  code: string;
  /** 'M': the primary message. */
  message: string;
  detail?: string; // 'D'
  hint?: string; // 'H'
  /** 'P': 1-based character position in the query text. */
  position?: string;
  internalPosition?: string; // 'p'
  internalQuery?: string; // 'q'
  where?: string; // 'W'
  schema?: string; // 's'
  table?: string; // 't'
  column?: string; // 'c'
  dataType?: string; // 'd'
  constraint?: string; // 'n'
  file?: string; // 'F'
  line?: string; // 'L'
  routine?: string; // 'R'
  /** Fields with codes this version does not know, by their one-character code. */
  unknown?: Record<string, string>;
}

type OptionalFieldName = Exclude<keyof NoticeFields, 'severity' | 'code' | 'message' | 'unknown'>;

const OPTIONAL_FIELDS: ReadonlyArray<readonly [string, OptionalFieldName]> = [
  ['V', 'severityNonLocalized'],
  ['D', 'detail'],
  ['H', 'hint'],
  ['P', 'position'],
  ['p', 'internalPosition'],
  ['q', 'internalQuery'],
  ['W', 'where'],
  ['s', 'schema'],
  ['t', 'table'],
  ['c', 'column'],
  ['d', 'dataType'],
  ['n', 'constraint'],
  ['F', 'file'],
  ['L', 'line'],
  ['R', 'routine'],
];
const OPTIONAL_BY_CODE = new Map(OPTIONAL_FIELDS);
const REQUIRED_CODES = new Set(['S', 'C', 'M']);

/**
 * `(Byte1 code, String value)*, Byte1 0`. The server always sends S, C and M; if one is missing
 * it reads as '' rather than failing, so a quirky server's error text still reaches the user.
 */
export function decodeNoticeFields(payload: Buffer, messageName: string): NoticeFields {
  const reader = new MessageReader(payload, messageName);
  const fields: NoticeFields = { severity: '', code: '', message: '' };
  for (;;) {
    const fieldCode = reader.uint8('a field code');
    if (fieldCode === 0) break;
    const character = String.fromCharCode(fieldCode);
    const value = reader.cstring(`field '${character}'`);
    if (character === 'S') fields.severity = value;
    else if (character === 'C') fields.code = value;
    else if (character === 'M') fields.message = value;
    else {
      const name = OPTIONAL_BY_CODE.get(character);
      if (name !== undefined) fields[name] = value;
      else {
        // A null-prototype record: a field code can never reach Object.prototype.
        fields.unknown ??= Object.create(null) as Record<string, string>;
        fields.unknown[character] = value;
      }
    }
  }
  reader.end();
  return fields;
}

export function writeNoticeFields(writer: MessageWriter, fields: NoticeFields): void {
  writer.int8(0x53).cstring(fields.severity);
  if (fields.severityNonLocalized !== undefined) writer.int8(0x56).cstring(fields.severityNonLocalized);
  writer.int8(0x43).cstring(fields.code);
  writer.int8(0x4d).cstring(fields.message);
  for (const [character, name] of OPTIONAL_FIELDS) {
    const value = fields[name];
    if (value !== undefined && character !== 'V') writer.int8(character.charCodeAt(0)).cstring(value);
  }
  if (fields.unknown !== undefined) {
    for (const [character, value] of Object.entries(fields.unknown)) {
      if (
        character.length !== 1 ||
        character.charCodeAt(0) === 0 ||
        character.charCodeAt(0) > 0x7f ||
        REQUIRED_CODES.has(character) ||
        OPTIONAL_BY_CODE.has(character)
      ) {
        continue;
      }
      writer.int8(character.charCodeAt(0)).cstring(value);
    }
  }
  writer.int8(0);
}
