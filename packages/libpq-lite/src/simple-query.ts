import type { BackendMessage, CopyResponse } from '@wal/protocol';
import { ProtocolError } from '@wal/protocol';
import { ServerError } from './errors.js';
import type { Wire } from './wire.js';

export type FieldDescription = Extract<BackendMessage, { type: 'RowDescription' }>['fields'][number];

/** One result set of a simple query, values as text (NULL as null). */
export interface QueryResult {
  fields: FieldDescription[];
  rows: (string | null)[][];
  commandTag: string;
}

/** A result set with raw column bytes, for values that are not text (TIMELINE_HISTORY content). */
export interface RawQueryResult {
  fields: FieldDescription[];
  rows: (Buffer | null)[][];
  commandTag: string;
}

export type CopyBothStart = CopyResponse;

export interface SimpleQueryOutcome {
  results: RawQueryResult[];
  /** Set when the server switched to COPY BOTH: the caller now owns the wire. */
  copyBoth?: CopyBothStart;
}

/**
 * Sends a Query and collects result sets up to ReadyForQuery (protocol.sgml "Simple Query").
 * An ErrorResponse is remembered and thrown once ReadyForQuery arrives, so the connection stays
 * usable. With `allowCopyBoth` a CopyBothResponse ends the collection early.
 */
export async function runSimpleQuery(
  wire: Wire,
  sql: string,
  options: { allowCopyBoth?: boolean; onParameter?: (name: string, value: string) => void } = {},
): Promise<SimpleQueryOutcome> {
  wire.send({ type: 'Query', sql });
  const results: RawQueryResult[] = [];
  let current: RawQueryResult | undefined;
  let error: ServerError | undefined;
  for (;;) {
    const message = await wire.nextMessage();
    switch (message.type) {
      case 'RowDescription':
        current = { fields: message.fields, rows: [], commandTag: '' };
        break;
      case 'DataRow':
        if (current === undefined) throw unexpected('DataRow without RowDescription', sql);
        current.rows.push(message.values);
        break;
      case 'CommandComplete':
        results.push(current === undefined ? { fields: [], rows: [], commandTag: message.tag } : current);
        if (current !== undefined) current.commandTag = message.tag;
        current = undefined;
        break;
      case 'EmptyQueryResponse':
        current = undefined;
        break;
      case 'ErrorResponse':
        error ??= new ServerError(message.fields);
        current = undefined;
        break;
      case 'NoticeResponse':
        break;
      case 'ParameterStatus':
        options.onParameter?.(message.name, message.value);
        break;
      case 'CopyBothResponse':
        if (options.allowCopyBoth) return { results, copyBoth: message };
        throw unexpected(message.type, sql);
      case 'ReadyForQuery':
        if (error !== undefined) throw error;
        return { results };
      default:
        throw unexpected(message.type, sql);
    }
  }
}

function unexpected(what: string, sql: string): ProtocolError {
  return new ProtocolError(
    'WAL_ERR_PROTOCOL_UNEXPECTED_MESSAGE',
    `unexpected ${what} from the server in reply to ${JSON.stringify(sql.slice(0, 80))}`,
  );
}

/** Column values as text: PostgreSQL sends text-format values in the client encoding (UTF8). */
export function toTextResult(result: RawQueryResult): QueryResult {
  return {
    fields: result.fields,
    rows: result.rows.map((row) => row.map((value) => (value === null ? null : value.toString('utf8')))),
    commandTag: result.commandTag,
  };
}
