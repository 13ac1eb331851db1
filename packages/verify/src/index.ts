export { VerifyError, type VerifyErrorCode } from './errors.js';
export {
  type HistoryLine,
  isPrefix,
  parseHistory,
  type TimelineEntry,
  timelineEntries,
  timelineOfPoint,
} from './history.js';
export type { MissingRange } from './plan.js';
export type { Problem, ProblemKind } from './problems.js';
export { type VerifyOptions, type VerifyReport, verifyArchive } from './verify-archive.js';
export {
  type CheckedFile,
  type CheckedFileResult,
  WalChecker,
  type WalCheckerOptions,
} from './wal-checker.js';
