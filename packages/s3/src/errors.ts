import { WalError } from '@wal/protocol';

/** Stable codes of every error `@wal/s3` throws; `docs/errors.md` lists them. */
export type S3ErrorCode =
  | 'WAL_ERR_S3_URL'
  | 'WAL_ERR_S3_INVALID_NAME'
  | 'WAL_ERR_S3_OPTIONS'
  | 'WAL_ERR_S3_FILE'
  | 'WAL_ERR_S3_CREDENTIALS'
  | 'WAL_ERR_S3_NOT_FOUND'
  | 'WAL_ERR_S3_NO_SUCH_BUCKET'
  | 'WAL_ERR_S3_ACCESS_DENIED'
  | 'WAL_ERR_S3_REQUEST'
  | 'WAL_ERR_S3_CHECKSUM'
  | 'WAL_ERR_S3_CONFLICT'
  | 'WAL_ERR_S3_UNAVAILABLE'
  | 'WAL_ERR_S3_ABORTED';

export interface S3ErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  /** The HTTP status of the store's answer, when there was one. */
  status?: number;
  /** The store's own error code (`NoSuchBucket`, `SlowDown`, `BadDigest`…) or a socket error code. */
  storeCode?: string;
}

/**
 * A failed object-store operation. `code` says what kind of failure it is; `storeCode` and
 * `status` keep what the store answered. `retryable` is true where another try later can help
 * (the store was unreachable, overloaded or failing): the client has already retried it.
 */
export class S3Error extends WalError {
  declare readonly code: S3ErrorCode;
  readonly status?: number;
  readonly storeCode?: string;

  constructor(code: S3ErrorCode, message: string, options: S3ErrorOptions = {}) {
    super(code, message, { cause: options.cause, retryable: options.retryable ?? false });
    if (options.status !== undefined) this.status = options.status;
    if (options.storeCode !== undefined) this.storeCode = options.storeCode;
  }
}
