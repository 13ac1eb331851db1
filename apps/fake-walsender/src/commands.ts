import { type BackendMessage, encodeBackendMessage, type NoticeFields } from '@wal/protocol';

/**
 * The replication commands a physical receiver uses, parsed the way the walsender's grammar does
 * (`repl_gram.y`, `repl_scanner.l`; spec §5.2): uppercase keywords, identifiers lowercased unless
 * quoted (`""` is a quote), an optional trailing `;`. Anything that is not a replication command
 * is SQL, which a physical walsender refuses.
 */
export type ReplicationCommand =
  | { kind: 'IDENTIFY_SYSTEM' }
  | { kind: 'SHOW'; name: string }
  | { kind: 'TIMELINE_HISTORY'; timeline: number }
  | { kind: 'READ_REPLICATION_SLOT'; slot: string }
  | { kind: 'CREATE_REPLICATION_SLOT'; slot: string; temporary: boolean; reserveWal: boolean }
  | { kind: 'DROP_REPLICATION_SLOT'; slot: string; wait: boolean }
  | { kind: 'START_REPLICATION'; slot: string | undefined; startLsn: bigint; timeline: number | undefined }
  | { kind: 'EMPTY' }
  | { kind: 'SQL'; sql: string }
  | { kind: 'SYNTAX_ERROR'; sql: string };

const KEYWORDS = [
  'IDENTIFY_SYSTEM',
  'BASE_BACKUP',
  'START_REPLICATION',
  'CREATE_REPLICATION_SLOT',
  'DROP_REPLICATION_SLOT',
  'ALTER_REPLICATION_SLOT',
  'READ_REPLICATION_SLOT',
  'TIMELINE_HISTORY',
  'UPLOAD_MANIFEST',
  'SHOW',
];

const IDENTIFIER = String.raw`(?:"(?:[^"]|"")+"|[A-Za-z\u0080-\u00ff_][A-Za-z\u0080-\u00ff_0-9$]*)`;

function identifier(text: string): string {
  if (text.startsWith('"')) return text.slice(1, -1).replaceAll('""', '"').slice(0, 63);
  return text.toLowerCase().slice(0, 63);
}

function recordPointer(text: string): bigint {
  const [high, low] = text.split('/') as [string, string];
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}

export function parseReplicationCommand(sql: string): ReplicationCommand {
  const text = sql.trim().replace(/;\s*$/, '').trim();
  if (text === '') return { kind: 'EMPTY' };
  const first = /^[A-Za-z_]+/.exec(text)?.[0] ?? '';
  if (!KEYWORDS.includes(first)) return { kind: 'SQL', sql };
  const syntaxError = { kind: 'SYNTAX_ERROR', sql } as const;
  let match: RegExpExecArray | null;
  switch (first) {
    case 'IDENTIFY_SYSTEM':
      return text === 'IDENTIFY_SYSTEM' ? { kind: 'IDENTIFY_SYSTEM' } : syntaxError;
    case 'SHOW':
      match = new RegExp(String.raw`^SHOW\s+(${IDENTIFIER}(?:\.${IDENTIFIER})*)$`).exec(text);
      return match === null
        ? syntaxError
        : { kind: 'SHOW', name: match[1]!.split('.').map(identifier).join('.') };
    case 'TIMELINE_HISTORY':
      match = /^TIMELINE_HISTORY\s+(\d+)$/.exec(text);
      return match === null ? syntaxError : { kind: 'TIMELINE_HISTORY', timeline: Number(match[1]) };
    case 'READ_REPLICATION_SLOT':
      match = new RegExp(String.raw`^READ_REPLICATION_SLOT\s+(${IDENTIFIER})$`).exec(text);
      return match === null ? syntaxError : { kind: 'READ_REPLICATION_SLOT', slot: identifier(match[1]!) };
    case 'CREATE_REPLICATION_SLOT': {
      match = new RegExp(
        String.raw`^CREATE_REPLICATION_SLOT\s+(${IDENTIFIER})(\s+TEMPORARY)?\s+PHYSICAL(?:\s+(RESERVE_WAL)|\s*\(\s*([^)]*)\))?$`,
      ).exec(text);
      if (match === null) return syntaxError;
      let reserveWal = match[3] !== undefined;
      if (match[4] !== undefined && match[4].trim() !== '') {
        for (const option of match[4].split(',').map((part) => part.trim())) {
          const optionMatch = /^(\w+)(?:\s+'?(\w+)'?)?$/.exec(option);
          if (optionMatch === null || optionMatch[1]!.toLowerCase() !== 'reserve_wal') return syntaxError;
          reserveWal = !['false', 'off', '0', 'no'].includes((optionMatch[2] ?? 'true').toLowerCase());
        }
      }
      return {
        kind: 'CREATE_REPLICATION_SLOT',
        slot: identifier(match[1]!),
        temporary: match[2] !== undefined,
        reserveWal,
      };
    }
    case 'DROP_REPLICATION_SLOT':
      match = new RegExp(String.raw`^DROP_REPLICATION_SLOT\s+(${IDENTIFIER})(\s+WAIT)?$`).exec(text);
      return match === null
        ? syntaxError
        : { kind: 'DROP_REPLICATION_SLOT', slot: identifier(match[1]!), wait: match[2] !== undefined };
    case 'START_REPLICATION':
      match = new RegExp(
        String.raw`^START_REPLICATION(?:\s+SLOT\s+(${IDENTIFIER}))?(?:\s+PHYSICAL)?\s+([0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8})(?:\s+TIMELINE\s+(\d+))?$`,
      ).exec(text);
      if (match === null) return syntaxError;
      return {
        kind: 'START_REPLICATION',
        slot: match[1] === undefined ? undefined : identifier(match[1]),
        startLsn: recordPointer(match[2]!),
        timeline: match[3] === undefined ? undefined : Number(match[3]),
      };
    default:
      return syntaxError;
  }
}

export const TypeOid = { bytea: 17, int8: 20, int4: 23, text: 25 } as const;

const TYPE_SIZE: Record<number, number> = { 17: -1, 20: 8, 23: 4, 25: -1 };

export interface Column {
  name: string;
  typeOid: number;
  /** Default -1 as `printsimple_startup` sends; TIMELINE_HISTORY's hand-built description sends 0. */
  typeModifier?: number;
}

/** RowDescription + DataRows + CommandComplete as one buffer (text format). */
export function resultSet(columns: Column[], rows: (string | Buffer | null)[][], tag: string): Buffer[] {
  const messages: BackendMessage[] = [
    {
      type: 'RowDescription',
      fields: columns.map((column) => ({
        name: column.name,
        tableOid: 0,
        columnNumber: 0,
        typeOid: column.typeOid,
        typeSize: TYPE_SIZE[column.typeOid] ?? -1,
        typeModifier: column.typeModifier ?? -1,
        format: 0,
      })),
    },
    ...rows.map(
      (row): BackendMessage => ({
        type: 'DataRow',
        values: row.map((value) =>
          value === null ? null : typeof value === 'string' ? Buffer.from(value) : value,
        ),
      }),
    ),
    { type: 'CommandComplete', tag },
  ];
  return messages.map(encodeBackendMessage);
}

/** ErrorResponse fields the way a PostgreSQL server fills them. */
export function errorFields(
  code: string,
  message: string,
  extra: Partial<NoticeFields> & { severity?: 'ERROR' | 'FATAL' | 'PANIC' } = {},
): NoticeFields {
  const severity = extra.severity ?? 'ERROR';
  return { severityNonLocalized: severity, ...extra, severity, code, message };
}

/** `SHOW wal_segment_size` text: GUC unit formatting picks the largest unit that divides exactly. */
export function formatSegmentSize(bytes: number): string {
  const megabytes = bytes / (1024 * 1024);
  return megabytes % 1024 === 0 ? `${megabytes / 1024}GB` : `${megabytes}MB`;
}
