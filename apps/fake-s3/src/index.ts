export {
  type RunningS3,
  type RunningS3rver,
  S3RVER_CREDENTIALS,
  type S3rverOptions,
  startS3rver,
} from './s3rver.js';
