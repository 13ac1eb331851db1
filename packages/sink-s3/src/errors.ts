import { WalError } from '@wal/protocol';

/** Stable codes of the errors the S3 sink throws itself; `docs/errors.md` lists them. */
export type S3SinkErrorCode =
  /** An option of S3Sink is out of range. */
  | 'WAL_ERR_SINK_S3_INVALID_OPTION'
  /** A spool file could not be uploaded; the cause is the store's error (its code and message). */
  | 'WAL_ERR_SINK_S3_UPLOAD'
  /** The caller's signal ended a wait for the store (room in the spool, the first listing). */
  | 'WAL_ERR_SINK_S3_ABORTED'
  /** The uploader was stopped (finish() ran, or it failed): the sink takes no more WAL. */
  | 'WAL_ERR_SINK_S3_STOPPED';

/**
 * A failure of the S3 sink itself. Errors of the store (`WAL_ERR_S3_*` from `@wal/s3`) and of the
 * spool directory (`WAL_ERR_SINK_*` from `@wal/sink-fs`) pass through unchanged, as the cause of a
 * WAL_ERR_SINK_S3_UPLOAD that names the file.
 */
export class S3SinkError extends WalError {
  declare readonly code: S3SinkErrorCode;
}

/** The code and `retryable` flag of a store error, read by field so duplicate package copies work. */
export function errorFacts(error: unknown): { code: string | undefined; retryable: boolean } {
  const fields = error as { code?: unknown; retryable?: unknown } | null;
  return {
    code: typeof fields?.code === 'string' ? fields.code : undefined,
    retryable: fields?.retryable === true,
  };
}

/** A failed upload of one spool file: what failed and where, with the store's own error as cause. */
export function uploadError(error: unknown, action: string, storeUrl: string): S3SinkError {
  const { code, retryable } = errorFacts(error);
  const reason = error instanceof Error ? error.message : String(error);
  return new S3SinkError(
    'WAL_ERR_SINK_S3_UPLOAD',
    `${action} in ${storeUrl} failed: ${code === undefined ? '' : `${code}: `}${reason}`,
    { cause: error, retryable },
  );
}
