export { boundCommand, boundConnect, type WaitBounds } from './command-guard.js';
export type { IdentifySystemResult, ReplicationConnection } from './connection.js';
export { StreamError, type StreamErrorCode } from './errors.js';
export {
  buildStatusUpdate,
  type FeedbackPositions,
  ReceiveDeadline,
  reportedFlushLsn,
  StatusSchedule,
} from './feedback.js';
export { lengthToKeepBeforeStop, nextSegmentBoundary, segmentStartOf } from './positions.js';
export {
  fileModeFromDataDirectoryMode,
  MINIMUM_SERVER_VERSION,
  receiveWal,
  segmentSizeFromSetting,
} from './receive-wal.js';
export { type Classification, classifyError, MAX_RECONNECT_DELAY_MS, ReconnectBackoff } from './reconnect.js';
export type { SinkCloseReason, WalSink } from './sink.js';
export { type ResumePoint, SlotInvalidatedError, slotInvalidatedError } from './slot-invalidation.js';
export { chooseStartPosition, type StartPosition, type StartPositionSource } from './start-position.js';
export { checkHistoryContent, checkNextTimeline, ensureHistoryFile } from './timeline.js';
export type { ReceiveEvent, ReceiveWalOptions } from './types.js';
