/**
 * Codes of the test-cluster helper. A cluster that fails to start says why, with the tail of the
 * server log, so a red test run explains itself without anyone digging in a temporary directory.
 */
export type ClusterErrorCode =
  | 'WAL_ERR_CLUSTER_OPTIONS'
  | 'WAL_ERR_CLUSTER_VERSION'
  | 'WAL_ERR_CLUSTER_BINARIES'
  | 'WAL_ERR_CLUSTER_INITDB'
  | 'WAL_ERR_CLUSTER_SETUP'
  | 'WAL_ERR_CLUSTER_START'
  | 'WAL_ERR_CLUSTER_STOP'
  | 'WAL_ERR_CLUSTER_STOPPED'
  | 'WAL_ERR_CLUSTER_SQL'
  | 'WAL_ERR_CLUSTER_TLS'
  | 'WAL_ERR_CLUSTER_STANDBY'
  | 'WAL_ERR_CLUSTER_CLIENT_TOOLS';

/**
 * Shaped like `WalError` from @wal/protocol (`code`, `retryable`, `cause`) without extending it:
 * this package sits below every other one (their tests use it), so importing @wal/protocol would
 * make a dependency cycle.
 */
export class ClusterError extends Error {
  readonly code: ClusterErrorCode;
  readonly retryable: boolean;
  /** SQLSTATE when the error came from the server (`WAL_ERR_CLUSTER_SQL`). */
  readonly sqlState: string | undefined;

  constructor(
    code: ClusterErrorCode,
    message: string,
    options: { cause?: unknown; retryable?: boolean; sqlState?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.sqlState = options.sqlState;
  }
}
