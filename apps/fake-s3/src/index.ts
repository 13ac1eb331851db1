export {
  type RunningS3,
  type RunningS3rver,
  S3RVER_CREDENTIALS,
  type S3rverOptions,
  startS3rver,
} from './s3rver.js';
export type { StoredObject } from './scripted/bucket.js';
export type { Fault, FaultRule, Operation } from './scripted/faults.js';
export {
  type RecordedRequest,
  type ScriptedS3,
  type ScriptedS3Options,
  startScriptedS3,
} from './scripted/server.js';
