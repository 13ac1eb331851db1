import { WalError } from '@wal/protocol';

/** Stable codes of the verifier's own failures (it could not verify); `docs/errors.md` lists them. */
export type VerifyErrorCode =
  | 'WAL_ERR_VERIFY_EMPTY_ARCHIVE'
  | 'WAL_ERR_VERIFY_INVALID_RANGE'
  | 'WAL_ERR_VERIFY_CORRUPT_WAL';

/**
 * The archive could not be verified at all (as opposed to problems found in it), or WAL checked
 * as it arrives is corrupt (`WAL_ERR_VERIFY_CORRUPT_WAL`, with the problem and its LSN).
 */
export class VerifyError extends WalError {
  declare readonly code: VerifyErrorCode;

  /** For WAL_ERR_VERIFY_CORRUPT_WAL: the first bad LSN. */
  readonly lsn: bigint | undefined;

  constructor(code: VerifyErrorCode, message: string, options: { cause?: unknown; lsn?: bigint } = {}) {
    super(code, message, options);
    this.lsn = options.lsn;
  }
}
