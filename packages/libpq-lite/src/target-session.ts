import type { Connection } from './connection.js';
import { ConnectionError } from './errors.js';

export const TARGET_SESSION_ATTRS = [
  'any',
  'read-write',
  'read-only',
  'primary',
  'standby',
  'prefer-standby',
] as const;
export type TargetSessionAttrs = (typeof TARGET_SESSION_ATTRS)[number];

/** What one pass over the hosts accepts: prefer-standby is a standby pass, then any server. */
export type SessionRequirement = Exclude<TargetSessionAttrs, 'prefer-standby'>;

/** libpq `PQconnectPoll`: prefer-standby runs the host list twice, the second time taking any server. */
export function sessionPasses(attrs: TargetSessionAttrs): SessionRequirement[] {
  return attrs === 'prefer-standby' ? ['standby', 'any'] : [attrs];
}

function describeServer(connection: Connection): string {
  return connection.host.startsWith('/')
    ? `server on socket "${connection.host}/.s.PGSQL.${connection.port}"`
    : `server at "${connection.host}", port ${connection.port}`;
}

function rejection(connection: Connection, reason: string): ConnectionError {
  return new ConnectionError(
    'WAL_ERR_CONNECTION_TARGET_SESSION',
    `connection to ${describeServer(connection)} failed: ${reason}`,
  );
}

/** A GUC_REPORT boolean as libpq reads it (`on`/`off`), undefined when the server did not report it. */
function reported(connection: Connection, name: string): boolean | undefined {
  const value = connection.parameters.get(name);
  return value === undefined ? undefined : value === 'on';
}

/**
 * Whether the session is read-only (libpq CONNECTION_CHECK_TARGET): from default_transaction_read_only
 * and in_hot_standby, which servers from PostgreSQL 14 on report at startup, else from
 * `SHOW transaction_read_only`, which a walsender answers too.
 */
async function isReadOnly(connection: Connection): Promise<boolean | ConnectionError> {
  const defaultReadOnly = reported(connection, 'default_transaction_read_only');
  const hotStandby = reported(connection, 'in_hot_standby');
  if (defaultReadOnly !== undefined && hotStandby !== undefined) return defaultReadOnly || hotStandby;
  try {
    return (await connection.show('transaction_read_only')).startsWith('on');
  } catch {
    return rejection(connection, '"SHOW transaction_read_only" failed');
  }
}

/**
 * Whether the server is a hot standby: in_hot_standby (PostgreSQL 14 and later). Older servers do
 * not report it; libpq then runs `SELECT pg_catalog.pg_is_in_recovery()`, which works on a regular
 * or `replication=database` session but not on a physical replication connection (a walsender
 * with replication=true runs replication commands only), so there the answer is a clear refusal.
 */
async function isHotStandby(
  connection: Connection,
  replication: string | undefined,
): Promise<boolean | ConnectionError> {
  const hotStandby = reported(connection, 'in_hot_standby');
  if (hotStandby !== undefined) return hotStandby;
  if (connection.serverVersion > 0 && connection.serverVersion < 90000) return false;
  if (isPhysicalReplication(replication)) {
    return rejection(
      connection,
      `server version "${connection.serverVersionText}" does not report "in_hot_standby" (PostgreSQL 14 and later do), ` +
        'and a physical replication connection cannot run SQL to ask whether it is a standby; ' +
        'use target_session_attrs=any, read-write or read-only with this server',
    );
  }
  try {
    const result = await connection.query('SELECT pg_catalog.pg_is_in_recovery()');
    return result[0]?.rows[0]?.[0]?.startsWith('t') === true;
  } catch {
    return rejection(connection, '"SELECT pg_is_in_recovery()" failed');
  }
}

/** libpq's `replication` keyword: true/on/yes/1 is a physical walsender; database a logical one. */
function isPhysicalReplication(replication: string | undefined): boolean {
  if (replication === undefined) return false;
  return ['true', 'on', 'yes', '1'].includes(replication.toLowerCase());
}

/**
 * Checks an established session against one pass's requirement. Returns undefined when it fits,
 * else the error that libpq would append before trying the next host (the caller closes the
 * connection): "session is read-only", "server is in hot standby mode"...
 */
export async function checkTargetSession(
  connection: Connection,
  requirement: SessionRequirement,
  replication: string | undefined,
): Promise<ConnectionError | undefined> {
  if (requirement === 'any') return undefined;
  if (requirement === 'read-write' || requirement === 'read-only') {
    const readOnly = await isReadOnly(connection);
    if (readOnly instanceof ConnectionError) return readOnly;
    if (requirement === 'read-write' && readOnly) return rejection(connection, 'session is read-only');
    if (requirement === 'read-only' && !readOnly) return rejection(connection, 'session is not read-only');
    return undefined;
  }
  const standby = await isHotStandby(connection, replication);
  if (standby instanceof ConnectionError) return standby;
  if (requirement === 'primary' && standby) return rejection(connection, 'server is in hot standby mode');
  if (requirement === 'standby' && !standby)
    return rejection(connection, 'server is not in hot standby mode');
  return undefined;
}
