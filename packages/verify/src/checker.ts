/**
 * `@wal/verify/checker`: the WAL reader's checks alone, pure (no I/O), for callers that hold WAL in
 * memory, such as a receiver that checks WAL before writing it (docs/adr/0009-wal-verify.md).
 */

export { VerifyError, type VerifyErrorCode } from './errors.js';
export type { Problem, ProblemKind } from './problems.js';
export {
  type CheckedFile,
  type CheckedFileResult,
  WalChecker,
  type WalCheckerOptions,
} from './wal-checker.js';
