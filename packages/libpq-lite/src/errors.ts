import type { NoticeFields } from '@wal/protocol';
import { escapeControlCharacters, WalError } from '@wal/protocol';
import { isRetryableSqlState } from './sqlstate.js';

/**
 * An ErrorResponse from the server. Keeps the SQLSTATE and every field the server sent, so a
 * caller can branch on `sqlState` and a CLI can print DETAIL and HINT like psql does.
 */
export class ServerError extends WalError {
  readonly sqlState: string;
  readonly severity: string;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  readonly fields: NoticeFields;

  constructor(fields: NoticeFields, options: { prefix?: string } = {}) {
    super('WAL_ERR_SERVER', formatServerMessage(fields, options.prefix), {
      retryable: isRetryableSqlState(fields.code),
    });
    this.sqlState = fields.code;
    this.severity = fields.severity;
    this.detail = fields.detail;
    this.hint = fields.hint;
    this.fields = fields;
  }
}

/**
 * libpq's layout (`ERROR:  …`, `DETAIL:  …` on the next line), with each field's own control
 * characters escaped: the message is printed, and a server must not forge lines or terminal
 * escapes with it. `fields` keeps the text as sent.
 */
function formatServerMessage(fields: NoticeFields, prefix: string | undefined): string {
  let text = `${prefix ?? ''}${escapeControlCharacters(fields.severity)}:  ${escapeControlCharacters(fields.message)}`;
  if (fields.detail !== undefined) text += `\nDETAIL:  ${escapeControlCharacters(fields.detail)}`;
  if (fields.hint !== undefined) text += `\nHINT:  ${escapeControlCharacters(fields.hint)}`;
  return text;
}

export type ConnectionErrorCode =
  | 'WAL_ERR_CONNECTION_REFUSED'
  | 'WAL_ERR_CONNECTION_TIMEOUT'
  | 'WAL_ERR_CONNECTION_CLOSED'
  | 'WAL_ERR_CONNECTION_LOST'
  | 'WAL_ERR_CONNECTION_ABORTED'
  | 'WAL_ERR_CONNECTION_HOST_NOT_FOUND'
  | 'WAL_ERR_CONNECTION_FAILED'
  | 'WAL_ERR_CONNECTION_PROTOCOL_VERSION'
  | 'WAL_ERR_CONNECTION_STATE'
  /** The server is not what target_session_attrs asks for (read-only, a standby...). Retryable. */
  | 'WAL_ERR_CONNECTION_TARGET_SESSION';

/** The transport failed: nothing reached a server, the server went away, or the caller misused the connection. */
export class ConnectionError extends WalError {
  declare readonly code: ConnectionErrorCode;
  constructor(
    code: ConnectionErrorCode,
    message: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(code, message, {
      cause: options.cause,
      retryable:
        options.retryable ??
        (code !== 'WAL_ERR_CONNECTION_STATE' &&
          code !== 'WAL_ERR_CONNECTION_ABORTED' &&
          code !== 'WAL_ERR_CONNECTION_PROTOCOL_VERSION'),
    });
  }
}

export type AuthenticationErrorCode =
  | 'WAL_ERR_AUTH_FAILED'
  | 'WAL_ERR_AUTH_REJECTED'
  | 'WAL_ERR_AUTH_NO_REPLICATION_PERMISSION'
  | 'WAL_ERR_AUTH_UNSUPPORTED'
  | 'WAL_ERR_AUTH_NO_PASSWORD'
  | 'WAL_ERR_AUTH_SERVER_SIGNATURE'
  | 'WAL_ERR_AUTH_SCRAM'
  | 'WAL_ERR_AUTH_CHANNEL_BINDING'
  | 'WAL_ERR_AUTH_INCOMPLETE';

/**
 * Authentication did not succeed. Never retryable: trying again with the same credentials gives
 * the same answer. `needsPassword` is true when the server asked for a password and none was
 * available, so a CLI can prompt (libpq's `PQconnectionNeedsPassword`).
 */
export class AuthenticationError extends WalError {
  declare readonly code: AuthenticationErrorCode;
  readonly sqlState: string | undefined;
  readonly serverError: ServerError | undefined;
  readonly needsPassword: boolean;
  /** What to do about it, in the library's terms; the message itself is libpq's. */
  readonly advice: string | undefined;

  constructor(
    code: AuthenticationErrorCode,
    message: string,
    options: { cause?: unknown; serverError?: ServerError; needsPassword?: boolean; advice?: string } = {},
  ) {
    super(code, message, { cause: options.cause ?? options.serverError, retryable: false });
    this.serverError = options.serverError;
    this.advice = options.advice;
    this.sqlState = options.serverError?.sqlState;
    this.needsPassword = options.needsPassword ?? false;
  }
}

export type TlsErrorCode =
  | 'WAL_ERR_TLS_NOT_SUPPORTED'
  | 'WAL_ERR_TLS_VERIFY'
  | 'WAL_ERR_TLS_HOST_MISMATCH'
  | 'WAL_ERR_TLS_HANDSHAKE'
  | 'WAL_ERR_TLS_ROOT_CERT_MISSING'
  | 'WAL_ERR_TLS_CONFIG'
  | 'WAL_ERR_TLS_UNENCRYPTED_DATA'
  | 'WAL_ERR_TLS_SERVER_ERROR'
  | 'WAL_ERR_TLS_INVALID_RESPONSE'
  | 'WAL_ERR_TLS_ALPN'
  | 'WAL_ERR_TLS_CERTIFICATE_HASH';

/** Transport encryption could not be set up as `sslmode` demands. */
export class TlsError extends WalError {
  declare readonly code: TlsErrorCode;
  /** What to do about it, where the message (libpq's) does not say. */
  readonly advice: string | undefined;

  constructor(
    code: TlsErrorCode,
    message: string,
    options: { cause?: unknown; retryable?: boolean; advice?: string } = {},
  ) {
    super(code, message, { cause: options.cause, retryable: options.retryable ?? false });
    this.advice = options.advice;
  }
}

/** A connection string or keyword that libpq would reject; the message is libpq's. */
export class ConnectionStringError extends WalError {
  declare readonly code: 'WAL_ERR_CONNINFO';
  constructor(message: string) {
    super('WAL_ERR_CONNINFO', message, { retryable: false });
  }
}
