import { StreamError } from './errors.js';

/** Upper bound of the reconnect delay (unless reconnectDelayMs itself is larger). */
export const MAX_RECONNECT_DELAY_MS = 60_000;

/** SQLSTATEs after which trying again cannot help without the operator. */
const FATAL_SQLSTATES: ReadonlyMap<string, string> = new Map([
  ['28P01', 'wrong password'],
  ['28000', 'authorization rejected (pg_hba.conf or role not allowed to log in)'],
  ['42501', 'insufficient privilege (the role needs REPLICATION)'],
  ['3D000', 'database does not exist'],
]);

/** Error codes of the lower layers that are fatal whatever `retryable` says. */
function isFatalCode(code: string): boolean {
  return (
    code.startsWith('WAL_ERR_AUTH_') ||
    code.startsWith('WAL_ERR_TLS_') ||
    code === 'WAL_ERR_CONNINFO' ||
    code === 'WAL_ERR_SINK_MISMATCH'
  );
}

export interface Classification {
  /** Reconnecting can help (pg_receivewal's retry loop), unless noLoop is set. */
  retry: boolean;
  /** The error to report: the original, or a StreamError with advice wrapping it. */
  error: unknown;
}

/**
 * Retry or stop after a failed streaming attempt. pg_receivewal retries every failure after the
 * first connection (spec §1.5); we stop where waiting cannot help:
 *
 * | failure                                             | decision |
 * |-----------------------------------------------------|----------|
 * | authentication (WAL_ERR_AUTH_*, 28P01, 28000), TLS, bad conninfo, 42501, 3D000 | fatal |
 * | WAL already removed (58P01)                          | fatal, wrapped as WAL_ERR_STREAM_WAL_REMOVED with advice |
 * | StreamError with retryable = false (version, system id or segment size changed...) | fatal |
 * | sink mismatch (WAL_ERR_SINK_MISMATCH)                | fatal |
 * | other ServerError: slot active 55006, shutdown 57P01, 57P03, 53300, XX000... | retry |
 * | protocol errors (WAL_ERR_PROTOCOL_*)                 | retry |
 * | other WalError: connection lost/refused/closed, sink errors... | its `retryable` flag |
 * | anything that is not a WalError (a bug)              | fatal |
 *
 * Errors are recognised by `code` and `sqlState`, not by class, so duplicate package copies work.
 */
export function classifyError(error: unknown): Classification {
  const fields = error as { code?: unknown; sqlState?: unknown; retryable?: unknown } | null;
  if (!(error instanceof Error) || typeof fields?.code !== 'string') return { retry: false, error };
  const code = fields.code;
  const sqlState = fields.sqlState;
  if (typeof sqlState === 'string') {
    if (sqlState === '58P01') {
      return {
        retry: false,
        error: new StreamError(
          'WAL_ERR_STREAM_WAL_REMOVED',
          `${error.message}. The server no longer has the WAL needed to continue; streaming cannot resume from this position. ` +
            'Use a replication slot so that the server keeps WAL until it has been received, and start again ' +
            '(an empty target, or one holding newer WAL).',
          { cause: error },
        ),
      };
    }
    if (FATAL_SQLSTATES.has(sqlState)) return { retry: false, error };
    return { retry: true, error };
  }
  if (isFatalCode(code)) return { retry: false, error };
  // A server that sent something unreadable: pg_receivewal retries; a proxy may have garbled it.
  if (code.startsWith('WAL_ERR_PROTOCOL_')) return { retry: true, error };
  return { retry: fields.retryable === true, error };
}

/**
 * The delay before the next reconnect: starts at reconnectDelayMs (pg_receivewal's fixed 5 s),
 * doubles per consecutive failure up to MAX_RECONNECT_DELAY_MS, and starts over once a connection
 * has streamed WAL again.
 */
export class ReconnectBackoff {
  readonly initialMs: number;
  readonly maximumMs: number;
  #nextMs: number;

  constructor(initialMs: number) {
    this.initialMs = initialMs;
    this.maximumMs = Math.max(initialMs, MAX_RECONNECT_DELAY_MS);
    this.#nextMs = initialMs;
  }

  /** The delay to wait now; the following one doubles. */
  next(): number {
    const delay = this.#nextMs;
    this.#nextMs = Math.min(this.maximumMs, Math.max(1, delay * 2));
    if (this.initialMs === 0) this.#nextMs = 0;
    return delay;
  }

  reset(): void {
    this.#nextMs = this.initialMs;
  }
}
