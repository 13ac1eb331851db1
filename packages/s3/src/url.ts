import { S3Error } from './errors.js';

/** Where an archive lives in object storage: a bucket and a key prefix. */
export interface S3Location {
  readonly bucket: string;
  /** `''` or `a/b`: no leading or trailing `/`, no empty part. */
  readonly prefix: string;
}

const SCHEME = 's3://';
// The DNS-compatible bucket names every S3 implementation accepts (AWS's rules for new buckets).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Whether a location given where a directory is accepted names object storage instead. */
export function isS3Url(text: string): boolean {
  return text.slice(0, SCHEME.length).toLowerCase() === SCHEME;
}

function invalid(url: string, reason: string): S3Error {
  // A URL with user information may carry a secret: it is never repeated.
  const shown = url.includes('@') ? 's3://…' : JSON.stringify(url);
  return new S3Error(
    'WAL_ERR_S3_URL',
    `${shown} is not a valid S3 location: ${reason}. Use s3://BUCKET/PREFIX.`,
  );
}

/**
 * Reads `s3://BUCKET[/PREFIX][/]`. Credentials, a region or an endpoint have no place in the URL:
 * they come from the AWS configuration.
 */
export function parseS3Url(url: string): S3Location {
  if (!isS3Url(url)) throw invalid(url, 'it does not start with s3://');
  const rest = url.slice(SCHEME.length);
  if (/[?#@\\\s]/.test(rest) || /[\u0000-\u001f\u007f]/.test(rest)) {
    throw invalid(
      url,
      'it holds a character that has no place in a bucket or prefix (?, #, @, \\, white space)',
    );
  }
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  if (!BUCKET.test(bucket) || bucket.includes('..')) {
    throw invalid(url, 'the bucket name must be 3 to 63 lower-case letters, digits, dots and hyphens');
  }
  const path = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/$/, '');
  const parts = path === '' ? [] : path.split('/');
  if (parts.some((part) => part === '' || part === '.' || part === '..')) {
    throw invalid(url, 'the prefix has an empty, "." or ".." part');
  }
  return { bucket, prefix: parts.join('/') };
}

/** The URL of a location, as messages show it. */
export function formatS3Url(location: S3Location): string {
  return location.prefix === ''
    ? `${SCHEME}${location.bucket}`
    : `${SCHEME}${location.bucket}/${location.prefix}`;
}
