import { escapeControlCharacters, formatLsn, ProtocolError, parseLsn } from '@wal/protocol';
import type { QueryResult, RawQueryResult } from './simple-query.js';

/**
 * A replication-grammar identifier: always quoted, `"` doubled (`repl_scanner.l`). Quoting keeps
 * the case of the name. Servers patched before June 2026 mis-parse a doubled `"`; slot names
 * cannot contain one anyway (lower case letters, digits, underscore).
 */
export function quoteIdentifier(name: string): string {
  if (name.includes('\0')) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_INVALID_IDENTIFIER',
      'an identifier cannot contain a NUL character',
    );
  }
  return `"${name.replaceAll('"', '""')}"`;
}

export interface SystemIdentification {
  systemId: bigint;
  timeline: number;
  xlogPosition: bigint;
  databaseName: string | null;
}

function unexpectedShape(
  command: string,
  result: RawQueryResult | QueryResult | undefined,
  rows: number,
  fields: number,
) {
  return new ProtocolError(
    'WAL_ERR_PROTOCOL_UNEXPECTED_RESULT',
    `${command}: got ${result?.rows.length ?? 0} rows and ${result?.fields.length ?? 0} fields, ` +
      `expected ${rows} rows and ${fields} or more fields`,
  );
}

function parseUnsigned(text: string | null, what: string, command: string): bigint {
  if (text === null || !/^\d+$/.test(text.trim())) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_UNEXPECTED_RESULT',
      `${command}: invalid ${what} ${JSON.stringify(text)}`,
    );
  }
  return BigInt(text.trim());
}

/**
 * Timelines are int4 up to PG15 and int8 from PG16 in IDENTIFY_SYSTEM; both arrive as decimal
 * text, and a TimeLineID is 32 bits.
 */
function parseTimeline(text: string | null, command: string): number {
  const value = parseUnsigned(text, 'timeline', command);
  if (value === 0n || value > 0xffffffffn) {
    throw new ProtocolError('WAL_ERR_PROTOCOL_UNEXPECTED_RESULT', `${command}: invalid timeline ${text}`);
  }
  return Number(value);
}

function parseLsnColumn(text: string | null, command: string): bigint {
  if (text === null) {
    throw new ProtocolError('WAL_ERR_PROTOCOL_UNEXPECTED_RESULT', `${command}: missing LSN`);
  }
  try {
    return parseLsn(text);
  } catch (error) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_UNEXPECTED_RESULT',
      `${command}: could not parse LSN "${escapeControlCharacters(text)}"`,
      {
        cause: error,
      },
    );
  }
}

/** IDENTIFY_SYSTEM: systemid, timeline, xlogpos, dbname (§5.3). */
export function parseIdentifySystem(result: QueryResult | undefined): SystemIdentification {
  const row = result?.rows[0];
  if (result === undefined || result.rows.length !== 1 || result.fields.length < 3 || row === undefined) {
    throw unexpectedShape('could not identify system', result, 1, 3);
  }
  return {
    systemId: parseUnsigned(row[0] ?? null, 'system identifier', 'IDENTIFY_SYSTEM'),
    timeline: parseTimeline(row[1] ?? null, 'IDENTIFY_SYSTEM'),
    xlogPosition: parseLsnColumn(row[2] ?? null, 'IDENTIFY_SYSTEM'),
    databaseName: result.fields.length >= 4 ? (row[3] ?? null) : null,
  };
}

export function parseShow(name: string, result: QueryResult | undefined): string {
  const value = result?.rows[0]?.[0];
  if (
    result === undefined ||
    result.rows.length !== 1 ||
    result.fields.length < 1 ||
    value === undefined ||
    value === null
  ) {
    throw unexpectedShape(`could not fetch setting "${name}"`, result, 1, 1);
  }
  return value;
}

/** TIMELINE_HISTORY: file name and the raw file bytes (not converted, not escaped). */
export function parseTimelineHistory(
  timeline: number,
  result: RawQueryResult | undefined,
): { fileName: string; content: Buffer } {
  const row = result?.rows[0];
  if (result === undefined || result.rows.length !== 1 || result.fields.length !== 2 || row === undefined) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_UNEXPECTED_RESULT',
      `unexpected response to TIMELINE_HISTORY command: got ${result?.rows.length ?? 0} rows and ` +
        `${result?.fields.length ?? 0} fields, expected 1 rows and 2 fields`,
    );
  }
  const fileName = row[0];
  const content = row[1];
  if (fileName === null || fileName === undefined || content === null || content === undefined) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_UNEXPECTED_RESULT',
      `TIMELINE_HISTORY ${timeline}: NULL column`,
    );
  }
  return { fileName: fileName.toString('utf8'), content };
}

export interface ReplicationSlotInfo {
  slotType: string | null;
  restartLsn: bigint | null;
  restartTimeline: number | null;
}

/** READ_REPLICATION_SLOT (PG15+): a missing slot is one all-NULL row, not an error. */
export function parseReadReplicationSlot(result: QueryResult | undefined): ReplicationSlotInfo {
  const row = result?.rows[0];
  if (result === undefined || result.rows.length !== 1 || result.fields.length !== 3 || row === undefined) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_UNEXPECTED_RESULT',
      `could not read replication slot: got ${result?.rows.length ?? 0} rows and ${result?.fields.length ?? 0} fields, expected 1 rows and 3 fields`,
    );
  }
  const [slotType = null, restartLsn = null, restartTimeline = null] = row;
  return {
    slotType,
    restartLsn: restartLsn === null ? null : parseLsnColumn(restartLsn, 'READ_REPLICATION_SLOT'),
    restartTimeline:
      restartTimeline === null ? null : parseTimeline(restartTimeline, 'READ_REPLICATION_SLOT'),
  };
}

export function parseCreateReplicationSlot(result: QueryResult | undefined): {
  slotName: string;
  consistentPoint: bigint;
} {
  const row = result?.rows[0];
  if (result === undefined || result.rows.length !== 1 || result.fields.length !== 4 || row === undefined) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_UNEXPECTED_RESULT',
      `could not create replication slot: got ${result?.rows.length ?? 0} rows and ${result?.fields.length ?? 0} fields, expected 1 rows and 4 fields`,
    );
  }
  const slotName = row[0];
  if (slotName === null || slotName === undefined) {
    throw new ProtocolError('WAL_ERR_PROTOCOL_UNEXPECTED_RESULT', 'CREATE_REPLICATION_SLOT: NULL slot name');
  }
  return { slotName, consistentPoint: parseLsnColumn(row[1] ?? null, 'CREATE_REPLICATION_SLOT') };
}

/**
 * CREATE_REPLICATION_SLOT for a physical slot. The parenthesised option list exists from PG15;
 * older servers take the bare legacy keyword.
 */
export function buildCreateReplicationSlot(
  slot: string,
  options: { reserveWal?: boolean; temporary?: boolean },
  serverVersion: number,
): string {
  let command = `CREATE_REPLICATION_SLOT ${quoteIdentifier(slot)}${options.temporary ? ' TEMPORARY' : ''} PHYSICAL`;
  if (options.reserveWal) command += serverVersion >= 150000 ? ' (RESERVE_WAL)' : ' RESERVE_WAL';
  return command;
}

export function buildDropReplicationSlot(slot: string, options: { wait?: boolean }): string {
  return `DROP_REPLICATION_SLOT ${quoteIdentifier(slot)}${options.wait ? ' WAIT' : ''}`;
}

export function buildStartReplication(request: {
  slot?: string;
  startLsn: bigint;
  timeline: number;
}): string {
  if (!Number.isInteger(request.timeline) || request.timeline < 1 || request.timeline > 0xffffffff) {
    throw new ProtocolError('WAL_ERR_PROTOCOL_INVALID_TIMELINE', `invalid timeline ${request.timeline}`);
  }
  const slot = request.slot === undefined ? '' : `SLOT ${quoteIdentifier(request.slot)} `;
  return `START_REPLICATION ${slot}${formatLsn(request.startLsn)} TIMELINE ${request.timeline}`;
}

export function buildTimelineHistory(timeline: number): string {
  if (!Number.isInteger(timeline) || timeline < 1 || timeline > 0xffffffff) {
    throw new ProtocolError('WAL_ERR_PROTOCOL_INVALID_TIMELINE', `invalid timeline ${timeline}`);
  }
  return `TIMELINE_HISTORY ${timeline}`;
}

/** SHOW takes `IDENT ('.' IDENT)*`; we quote each part so any GUC name is passed verbatim. */
export function buildShow(name: string): string {
  if (name === '' || name.split('.').some((part) => part === '')) {
    throw new ProtocolError('WAL_ERR_PROTOCOL_INVALID_IDENTIFIER', `invalid setting name "${name}"`);
  }
  // Plain names go as they are, like pg_receivewal; anything else is quoted.
  return `SHOW ${name
    .split('.')
    .map((part) => (/^[a-z_][a-z0-9_$]*$/.test(part) ? part : quoteIdentifier(part)))
    .join('.')}`;
}

/** The end-of-timeline row after START_REPLICATION: next_tli int8, next_tli_startpos text. */
export function parseNextTimeline(
  result: QueryResult | undefined,
): { timeline: number; startLsn: bigint } | undefined {
  if (result === undefined || result.fields.length === 0) return undefined;
  const row = result.rows[0];
  if (result.rows.length !== 1 || result.fields.length < 2 || row === undefined) {
    throw new ProtocolError(
      'WAL_ERR_PROTOCOL_UNEXPECTED_RESULT',
      `unexpected result set after end-of-timeline: got ${result.rows.length} rows and ${result.fields.length} fields, expected 1 rows and 2 fields`,
    );
  }
  return {
    timeline: parseTimeline(row[0] ?? null, 'end of timeline'),
    startLsn: parseLsnColumn(row[1] ?? null, 'end of timeline'),
  };
}
