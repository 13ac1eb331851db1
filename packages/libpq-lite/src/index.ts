export { md5PasswordResponse } from './auth/md5.js';
export { MAX_SCRAM_ITERATIONS, normalizeScramPassword, ScramClient } from './auth/scram.js';
export { certificateHashAlgorithm, tlsServerEndPointHash } from './certificate-hash.js';
export { type ConnectOptions, connect } from './connect.js';
export { Connection, parseServerVersion } from './connection.js';
export {
  CONNECTION_KEYWORDS,
  isConnectionKeyword,
  parseConnectionString,
} from './conninfo.js';
export {
  type ConnectionSettings,
  defaultSocketDirectory,
  type HostTarget,
  resolveSettings,
  type SslMode,
} from './environment.js';
export {
  AuthenticationError,
  type AuthenticationErrorCode,
  ConnectionError,
  type ConnectionErrorCode,
  ConnectionStringError,
  ServerError,
  TlsError,
  type TlsErrorCode,
} from './errors.js';
export {
  matchPasswordFileLine,
  type PasswordFileKey,
  readPasswordFile,
} from './pgpass.js';
export {
  parseIdentifySystem,
  parseNextTimeline,
  parseReadReplicationSlot,
  parseTimelineHistory,
  quoteIdentifier,
  type ReplicationSlotInfo,
  type SystemIdentification,
} from './replication-commands.js';
export type { CopyEvent, EndOfStreamResult, ReplicationStream } from './replication-stream.js';
export type { FieldDescription, QueryResult } from './simple-query.js';
export { isRetryableSqlState, SqlState } from './sqlstate.js';
export {
  checkTargetSession,
  type SessionRequirement,
  TARGET_SESSION_ATTRS,
  type TargetSessionAttrs,
} from './target-session.js';
export type { TraceSink } from './trace.js';
export type { ReadLease } from './wire.js';
