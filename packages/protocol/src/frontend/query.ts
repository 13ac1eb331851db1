import { MessageReader } from '../io/reader.js';
import { MessageWriter } from '../io/writer.js';
import { FrontendMessageCode } from '../message-codes.js';

/** 'Q' simple query; the only query protocol a walsender accepts. */
export interface Query {
  type: 'Query';
  sql: string;
}

export function encodeQuery(message: Omit<Query, 'type'>): Buffer {
  return new MessageWriter(message.sql.length * 3 + 6).cstring(message.sql).finish(FrontendMessageCode.Query);
}

export function decodeQuery(payload: Buffer): Query {
  const reader = new MessageReader(payload, 'Query');
  const sql = reader.cstring('the query text');
  reader.end();
  return { type: 'Query', sql };
}
