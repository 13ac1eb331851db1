import { WalError } from '@wal/protocol';

/** Stable codes of every error the archive reader throws; `docs/errors.md` lists them. */
export type ArchiveErrorCode =
  | 'WAL_ERR_ARCHIVE_INVALID_NAME'
  | 'WAL_ERR_ARCHIVE_INVALID_LOCATION'
  | 'WAL_ERR_ARCHIVE_UNREADABLE'
  | 'WAL_ERR_ARCHIVE_CORRUPT'
  | 'WAL_ERR_ARCHIVE_WRONG_SIZE'
  | 'WAL_ERR_ARCHIVE_COMPRESSION_UNSUPPORTED'
  | 'WAL_ERR_ARCHIVE_WRITE'
  | 'WAL_ERR_ARCHIVE_MISSING'
  | 'WAL_ERR_ARCHIVE_REMOVE';

/**
 * A failure to read a file from the archive, or to write what was read. A file that is simply not
 * in the archive is no error (the finders answer `undefined`). `retryable` is true where trying
 * again can help without a person: an I/O error or a permission being fixed by a mount or an
 * administrator; a corrupt or wrong-size file stays so.
 */
export class ArchiveError extends WalError {
  declare readonly code: ArchiveErrorCode;

  constructor(
    code: ArchiveErrorCode,
    message: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(code, message, options);
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

/** An I/O failure while reading the archive, as a retryable `WAL_ERR_ARCHIVE_UNREADABLE`. */
export function unreadable(error: unknown, action: string): ArchiveError {
  if (error instanceof ArchiveError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new ArchiveError(
    'WAL_ERR_ARCHIVE_UNREADABLE',
    `${action}: ${reason}. Check the archive's storage and permissions.`,
    {
      cause: error,
      retryable: true,
    },
  );
}
