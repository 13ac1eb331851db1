import { describe, expect, it } from 'vitest';
import { classify } from './classify.js';
import { S3Error } from './errors.js';
import { backoffDelay } from './retry.js';
import { rangeHeader } from './store.js';
import { formatS3Url, isS3Url, parseS3Url } from './url.js';

describe('s3:// URLs', () => {
  it('recognises the scheme in any case, and nothing else', () => {
    expect(isS3Url('s3://bucket')).toBe(true);
    expect(isS3Url('S3://bucket/x')).toBe(true);
    expect(isS3Url('/var/lib/wal')).toBe(false);
    expect(isS3Url('s3:/bucket')).toBe(false);
    expect(isS3Url('https://bucket')).toBe(false);
  });

  it('parses a bucket and a prefix without outer slashes', () => {
    expect(parseS3Url('s3://wal-archive')).toEqual({ bucket: 'wal-archive', prefix: '' });
    expect(parseS3Url('s3://wal-archive/')).toEqual({ bucket: 'wal-archive', prefix: '' });
    expect(parseS3Url('s3://wal-archive/a/b')).toEqual({ bucket: 'wal-archive', prefix: 'a/b' });
    expect(parseS3Url('s3://wal.archive-1/cluster_a/')).toEqual({
      bucket: 'wal.archive-1',
      prefix: 'cluster_a',
    });
  });

  it('formats a location back', () => {
    expect(formatS3Url({ bucket: 'b12', prefix: '' })).toBe('s3://b12');
    expect(formatS3Url(parseS3Url('s3://b12/x/y/'))).toBe('s3://b12/x/y');
  });

  it.each([
    ['no scheme', '/var/lib/wal'],
    ['empty bucket', 's3://'],
    ['empty bucket before a prefix', 's3:///prefix'],
    ['short bucket', 's3://ab'],
    ['upper case bucket', 's3://Bucket/x'],
    ['bucket ending in a dash', 's3://bucket-/x'],
    ['double dot bucket', 's3://a..b/x'],
    ['empty part', 's3://bucket/a//b'],
    ['dot part', 's3://bucket/a/./b'],
    ['dot-dot part', 's3://bucket/../b'],
    ['query', 's3://bucket/a?versionId=1'],
    ['fragment', 's3://bucket/a#x'],
    ['white space', 's3://bucket/a b'],
    ['backslash', 's3://bucket/a\\b'],
    ['control character', 's3://bucket/a\u0001'],
  ])('refuses %s with WAL_ERR_S3_URL', (_, url) => {
    expect(() => parseS3Url(url)).toThrow(S3Error);
    try {
      parseS3Url(url);
    } catch (error) {
      expect((error as S3Error).code).toBe('WAL_ERR_S3_URL');
      expect((error as S3Error).message).toContain('Use s3://BUCKET/PREFIX.');
    }
  });

  it('never repeats a URL that may hold credentials', () => {
    try {
      parseS3Url('s3://AKIA:very-secret@bucket/x');
      expect.unreachable();
    } catch (error) {
      expect((error as S3Error).code).toBe('WAL_ERR_S3_URL');
      expect((error as S3Error).message).not.toContain('very-secret');
    }
  });
});

describe('ranges', () => {
  it('turns [start, end) into an inclusive HTTP range', () => {
    expect(rangeHeader(undefined, undefined)).toBeUndefined();
    expect(rangeHeader(0, 8192)).toBe('bytes=0-8191');
    expect(rangeHeader(100, undefined)).toBe('bytes=100-');
    expect(rangeHeader(undefined, 10)).toBe('bytes=0-9');
    expect(rangeHeader(5, 5)).toBeNull();
    expect(rangeHeader(6, 5)).toBeNull();
  });

  it('refuses negative or fractional bounds', () => {
    expect(() => rangeHeader(-1, 4)).toThrow(/range/);
    expect(() => rangeHeader(0.5, 4)).toThrow(/range/);
    expect(() => rangeHeader(0, -4)).toThrow(/range/);
  });
});

describe('backoff with full jitter', () => {
  const policy = { attempts: 10, baseDelayMs: 100, maxDelayMs: 1000 };
  it('waits up to a doubling cap, bounded by the maximum', () => {
    expect(backoffDelay(policy, 1, () => 0.999999)).toBe(99);
    expect(backoffDelay(policy, 2, () => 0.999999)).toBe(199);
    expect(backoffDelay(policy, 4, () => 0.999999)).toBe(799);
    expect(backoffDelay(policy, 5, () => 0.999999)).toBe(999);
    expect(backoffDelay(policy, 40, () => 0.999999)).toBe(999);
    expect(backoffDelay(policy, 3, () => 0)).toBe(0);
  });
});

describe('classifying failures', () => {
  const context = { operation: 'PUT', target: 's3://b12/p/f', secrets: ['hidden-secret'] };
  const answer = (name: string, status: number, message = 'text') =>
    Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });

  it.each([
    ['SlowDown', 503, 'WAL_ERR_S3_UNAVAILABLE', true],
    ['InternalError', 500, 'WAL_ERR_S3_UNAVAILABLE', true],
    ['Whatever', 502, 'WAL_ERR_S3_UNAVAILABLE', true],
    ['TooManyRequests', 429, 'WAL_ERR_S3_UNAVAILABLE', true],
    ['RequestTimeout', 400, 'WAL_ERR_S3_UNAVAILABLE', true],
    ['BadDigest', 400, 'WAL_ERR_S3_CHECKSUM', true],
    ['NoSuchBucket', 404, 'WAL_ERR_S3_NO_SUCH_BUCKET', false],
    ['NoSuchKey', 404, 'WAL_ERR_S3_NOT_FOUND', false],
    ['NotFound', 404, 'WAL_ERR_S3_NOT_FOUND', false],
    ['AccessDenied', 403, 'WAL_ERR_S3_ACCESS_DENIED', false],
    ['InvalidArgument', 400, 'WAL_ERR_S3_REQUEST', false],
    ['PreconditionFailed', 412, 'WAL_ERR_S3_REQUEST', false],
  ])('%s (HTTP %i) is %s, retryable %s', (name, status, code, retryable) => {
    const error = classify(answer(name, status), context);
    expect(error).toMatchObject({ code, retryable, status, storeCode: name });
    expect(error.message).toContain(`PUT s3://b12/p/f failed: ${name} (HTTP ${status}): text.`);
  });

  it.each([
    ['ECONNRESET', true],
    ['ECONNREFUSED', true],
    ['EPIPE', true],
    ['ENOTFOUND', true],
    ['ERR_INVALID_ARG_TYPE', false],
  ])('a socket error %s is retryable: %s', (code, retryable) => {
    const error = classify(Object.assign(new Error('socket'), { code }), context);
    expect(error.retryable).toBe(retryable);
    expect(error.storeCode).toBe(code);
    expect(error.status).toBeUndefined();
  });

  it('treats a timeout as retryable', () => {
    const error = classify(Object.assign(new Error('timed out'), { name: 'TimeoutError' }), context);
    expect(error).toMatchObject({
      code: 'WAL_ERR_S3_UNAVAILABLE',
      retryable: true,
      storeCode: 'TimeoutError',
    });
  });

  it('maps a missing credential to WAL_ERR_S3_CREDENTIALS with what to set', () => {
    const error = classify(
      Object.assign(new Error('Could not load credentials from any providers'), {
        name: 'CredentialsProviderError',
      }),
      context,
    );
    expect(error.code).toBe('WAL_ERR_S3_CREDENTIALS');
    expect(error.message).toContain('AWS_ACCESS_KEY_ID');
  });

  it('blanks secrets out of the message and the cause', () => {
    const error = classify(answer('InvalidToken', 400, 'the token hidden-secret is bad'), context);
    expect(error.message).toContain('the token *** is bad');
    expect(String((error.cause as Error).message)).not.toContain('hidden-secret');
  });
});
