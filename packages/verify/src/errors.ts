import { WalError } from '@wal/protocol';

/** Stable codes of the verifier's own failures (it could not verify); `docs/errors.md` lists them. */
export type VerifyErrorCode = 'WAL_ERR_VERIFY_EMPTY_ARCHIVE' | 'WAL_ERR_VERIFY_INVALID_RANGE';

/** The archive could not be verified at all (as opposed to problems found in it). */
export class VerifyError extends WalError {
  declare readonly code: VerifyErrorCode;

  constructor(code: VerifyErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}
