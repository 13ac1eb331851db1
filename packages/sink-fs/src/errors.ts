import { systemErrorText, WalError } from '@wal/protocol';

/** Stable codes of every error the directory sink throws; `docs/errors.md` lists them. */
export type SinkErrorCode =
  | 'WAL_ERR_SINK_DISK_FULL'
  | 'WAL_ERR_SINK_PERMISSION_DENIED'
  | 'WAL_ERR_SINK_DIRECTORY_MISSING'
  | 'WAL_ERR_SINK_MISMATCH'
  | 'WAL_ERR_SINK_BAD_FILE'
  | 'WAL_ERR_SINK_COMPRESSION_UNSUPPORTED'
  | 'WAL_ERR_SINK_INVALID_OPTION'
  | 'WAL_ERR_SINK_OUT_OF_ORDER'
  | 'WAL_ERR_SINK_NOT_PREPARED'
  | 'WAL_ERR_SINK_IO';

/**
 * A failure of the WAL directory. Completed segments are never touched by a failure; the open
 * segment keeps its `.partial` name, and streaming resumes at that segment's start.
 * `retryable` is true where waiting can help without the operator: a full disk may be freed by an
 * archive cleanup, and a directory that maintenance made unwritable (a permission change, a
 * read-only remount) becomes writable again; pg_receivewal retries both. Anything else needs a
 * person.
 */
export class SinkError extends WalError {
  declare readonly code: SinkErrorCode;
  /** What the operator can do, where the message (in pg_receivewal's words) does not say. */
  readonly advice: string | undefined;

  constructor(
    code: SinkErrorCode,
    message: string,
    options: { cause?: unknown; retryable?: boolean; advice?: string } = {},
  ) {
    const { advice, ...rest } = options;
    super(code, message, rest);
    this.advice = advice;
  }
}

/** The errno code of a Node.js system error, if it is one. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/**
 * Turns a file-system failure into a SinkError. The message is pg_receivewal's: what failed, on
 * which path, and strerror()'s words (`could not write 8192 bytes to WAL file "X.partial": No
 * space left on device`); `advice` says what the operator can do.
 */
export function fileSystemError(error: unknown, action: string, directory: string): SinkError {
  if (error instanceof SinkError) return error;
  const code = errnoCode(error);
  const reason = systemErrorText(error) ?? (error instanceof Error ? error.message : String(error));
  const message = `${action}: ${reason}`;
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new SinkError('WAL_ERR_SINK_DISK_FULL', message, {
        cause: error,
        retryable: true,
        advice: `Free space in "${directory}"; completed segments are intact and streaming resumes at the start of the unfinished segment.`,
      });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new SinkError('WAL_ERR_SINK_PERMISSION_DENIED', message, {
        cause: error,
        retryable: true,
        advice: `Make "${directory}" writable for this user${code === 'EROFS' ? ' (the file system is read-only)' : ''}.`,
      });
    case 'ENOENT':
    case 'ENOTDIR':
      return new SinkError('WAL_ERR_SINK_DIRECTORY_MISSING', message, {
        cause: error,
        advice: `The WAL directory "${directory}" or a file in it disappeared: recreate the directory; the receiver never creates it.`,
      });
    default:
      return new SinkError('WAL_ERR_SINK_IO', message, { cause: error });
  }
}
