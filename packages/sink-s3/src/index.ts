export { S3SinkError, type S3SinkErrorCode } from './errors.js';
export {
  DEFAULT_MAX_QUEUED_FILES,
  DEFAULT_PARTIAL_UPLOAD_INTERVAL_MS,
  DEFAULT_UPLOAD_CONCURRENCY,
  S3Sink,
  type S3SinkOptions,
  type UploadStatus,
} from './s3-sink.js';
export type { StoredObject, UploadStore } from './store.js';
