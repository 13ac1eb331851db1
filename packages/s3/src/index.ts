export { DEFAULT_REGION } from './config.js';
export { S3Error, type S3ErrorCode, type S3ErrorOptions } from './errors.js';
export {
  MD5_METADATA_KEY,
  openS3Store,
  type PutOptions,
  type S3ObjectInfo,
  type S3Store,
  type S3StoreOptions,
} from './store.js';
export { formatS3Url, isS3Url, parseS3Url, type S3Location } from './url.js';
