import { S3Error, type S3ErrorCode } from './errors.js';

/** What a request was, for messages: `PUT s3://bucket/key`. */
export interface RequestContext {
  operation: string;
  target: string;
  /** Values to blank out of any text the store or a socket gave us. */
  secrets: readonly string[];
}

// Store codes that another try can fix. BadDigest and the SHA-256 mismatch mean the body was
// damaged on the way: a new try sends it again (a bounded number of times, like everything here).
const TRANSIENT_STORE_CODES = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ThrottlingException',
  'TooManyRequests',
  'ConditionalRequestConflict',
  'OperationAborted',
  'BadDigest',
  'XAmzContentSHA256Mismatch',
]);

// Socket and timer failures: the store may be fine a moment later.
const TRANSIENT_SOCKET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

const TRANSIENT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'TruncatedBody']);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  Code?: string;
}

function scrub(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) result = result.split(secret).join('***');
  return result;
}

const DAMAGED_BODY_CODES = new Set(['BadDigest', 'XAmzContentSHA256Mismatch']);

function codeFor(status: number | undefined, storeCode: string, transient: boolean): S3ErrorCode {
  if (DAMAGED_BODY_CODES.has(storeCode)) return 'WAL_ERR_S3_CHECKSUM';
  if (transient) return 'WAL_ERR_S3_UNAVAILABLE';
  if (storeCode === 'CredentialsProviderError') return 'WAL_ERR_S3_CREDENTIALS';
  if (storeCode === 'NoSuchBucket') return 'WAL_ERR_S3_NO_SUCH_BUCKET';
  if (storeCode === 'NoSuchKey' || (status === 404 && storeCode !== 'NoSuchUpload'))
    return 'WAL_ERR_S3_NOT_FOUND';
  if (status === 403 || status === 401) return 'WAL_ERR_S3_ACCESS_DENIED';
  return 'WAL_ERR_S3_REQUEST';
}

const ADVICE: Record<S3ErrorCode, string> = {
  WAL_ERR_S3_URL: '',
  WAL_ERR_S3_INVALID_NAME: '',
  WAL_ERR_S3_OPTIONS: '',
  WAL_ERR_S3_FILE: '',
  WAL_ERR_S3_CREDENTIALS:
    'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with the shared credentials file.',
  WAL_ERR_S3_NOT_FOUND: '',
  WAL_ERR_S3_NO_SUCH_BUCKET: 'Check the bucket name, and the endpoint (AWS_ENDPOINT_URL) and region.',
  WAL_ERR_S3_ACCESS_DENIED: "Check the credentials, the region and the bucket's policy.",
  WAL_ERR_S3_REQUEST: 'The store refused the request; trying again will not help.',
  WAL_ERR_S3_CHECKSUM:
    'The bytes were damaged between this machine and the store; check what lies between (a proxy rewriting bodies?).',
  WAL_ERR_S3_CONFLICT: '',
  WAL_ERR_S3_UNAVAILABLE: 'Check the endpoint, the network and the store; trying again later may succeed.',
  WAL_ERR_S3_ABORTED: '',
};

/**
 * An SDK, socket or timer failure as an {@link S3Error}: the store's code and message when it
 * answered, the socket's code when it did not, and whether another try can help.
 */
export function classify(error: unknown, context: RequestContext): S3Error {
  if (error instanceof S3Error) return error;
  const shape = (typeof error === 'object' && error !== null ? error : {}) as SdkErrorShape;
  const status = shape.$metadata?.httpStatusCode;
  const storeCode =
    shape.Code ?? (shape.code && !TRANSIENT_NAMES.has(shape.name ?? '') ? shape.code : shape.name) ?? 'Error';
  const transient =
    TRANSIENT_STORE_CODES.has(storeCode) ||
    TRANSIENT_SOCKET_CODES.has(storeCode) ||
    TRANSIENT_NAMES.has(shape.name ?? '') ||
    status === 429 ||
    (status !== undefined && status >= 500);
  const code = codeFor(status, storeCode, transient);
  const answer = status === undefined ? storeCode : `${storeCode} (HTTP ${status})`;
  const storeMessage = scrub(
    shape.message || (error instanceof Error ? '' : String(error)) || 'no message',
    context.secrets,
  );
  const message = `${context.operation} ${context.target} failed: ${answer}: ${storeMessage}.`.replace(
    /\.\.$/,
    '.',
  );
  // The cause is kept for its stack, unless a secret is in its text: then a scrubbed copy.
  const rawMessage = shape.message ?? '';
  const cause = context.secrets.some((secret) => rawMessage.includes(secret))
    ? Object.assign(new Error(storeMessage), { name: shape.name ?? 'Error' })
    : error;
  return new S3Error(code, ADVICE[code] ? `${message} ${ADVICE[code]}` : message, {
    cause,
    retryable: transient,
    ...(status === undefined ? {} : { status }),
    storeCode,
  });
}
