import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { readBody } from './body.js';
import type { RequestContext } from './classify.js';
import { clientConfig, type Environment, secretsOf } from './config.js';
import { S3Error } from './errors.js';
import { aborted, DEFAULT_RETRY, type RetryPolicy, withRetries } from './retry.js';
import { formatS3Url, parseS3Url, type S3Location } from './url.js';

export interface S3StoreOptions {
  /** The AWS configuration variables (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** Tries per request for failures that can pass (5xx, 429/SlowDown, timeouts, resets). */
  retry?: { attempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /** A request with no bytes moving for this long is ended and tried again (default 30 s). */
  requestTimeoutMs?: number;
}

export interface S3ObjectInfo {
  /** The name relative to the store's prefix. */
  readonly name: string;
  readonly size: number;
  /** The store's ETag, without quotes. */
  readonly etag?: string;
  /** The MD5 (hex) of the body as this package stored it in the object's metadata (head only). */
  readonly md5?: string;
  readonly lastModified?: Date;
}

export interface PutOptions {
  /** Send `If-None-Match: *`: never replace an existing object (see {@link S3Store.put}). */
  ifNoneMatch?: boolean;
  signal?: AbortSignal;
}

/** What a PUT sends: the size and MD5 known up front, and a body made afresh for each try. */
interface PutSource {
  size: number;
  md5: Buffer;
  body: () => Buffer | Readable;
}

export interface S3Store {
  /** `s3://bucket/prefix`, for messages: it holds no secret. */
  readonly url: string;
  readonly location: S3Location;
  /**
   * Stores `body` under `name` with its Content-MD5, which the store verifies. With `ifNoneMatch`
   * an existing object is never replaced: one with the same bytes answers `'identical'`, another
   * throws `WAL_ERR_S3_CONFLICT`.
   */
  put(name: string, body: Buffer, options?: PutOptions): Promise<'created' | 'identical'>;
  /**
   * {@link S3Store.put} of a file's contents, streamed (one PUT, up to the store's 5 GiB limit):
   * memory stays bounded for any segment size. The file is read once for its MD5, then once per try;
   * a file that changes meanwhile fails the store's Content-MD5 check and is reported.
   */
  putFile(name: string, path: string, options?: PutOptions): Promise<'created' | 'identical'>;
  /** The object's size and checksums; `undefined` when there is none. */
  head(name: string, options?: { signal?: AbortSignal }): Promise<S3ObjectInfo | undefined>;
  /** The object's bytes, or those from `start` to `end` (exclusive). Missing: `WAL_ERR_S3_NOT_FOUND`. */
  get(name: string, options?: { start?: number; end?: number; signal?: AbortSignal }): Promise<Buffer>;
  /** The object's bytes as a stream; a failure after the first byte is the stream's error, not retried. */
  getStream(name: string, options?: { signal?: AbortSignal }): Promise<Readable>;
  /** The objects directly under the prefix, in the store's (lexical) order. */
  list(options?: { signal?: AbortSignal }): AsyncIterable<S3ObjectInfo>;
  /** Removes the object; removing a missing object is no error. */
  delete(name: string, options?: { signal?: AbortSignal }): Promise<void>;
  /** Closes the client's sockets. */
  close(): void;
}

/** Our copy of the body's MD5 in the object's metadata: a multipart ETag is not an MD5. */
export const MD5_METADATA_KEY = 'wal-md5';

function unquote(etag: string | undefined): string | undefined {
  return etag === undefined ? undefined : etag.replace(/^"|"$/g, '');
}

function retryPolicy(options: S3StoreOptions['retry']): RetryPolicy {
  const policy = { ...DEFAULT_RETRY, ...options };
  if (
    !(Number.isInteger(policy.attempts) && policy.attempts >= 1) ||
    policy.baseDelayMs < 0 ||
    policy.maxDelayMs < 0
  ) {
    throw new S3Error(
      'WAL_ERR_S3_OPTIONS',
      'retry.attempts must be an integer of 1 or more, and delays not negative.',
    );
  }
  return policy;
}

/** Opens a store on `s3://bucket/prefix`. Nothing is sent until the first request. */
export function openS3Store(location: string | S3Location, options: S3StoreOptions = {}): S3Store {
  const where = typeof location === 'string' ? parseS3Url(location) : parseS3Url(formatS3Url(location));
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  if (!(requestTimeoutMs > 0)) throw new S3Error('WAL_ERR_S3_OPTIONS', 'requestTimeoutMs must be above 0.');
  const env = options.env ?? process.env;
  // The SDK version is pinned for Node.js 20 on purpose (ADR 0010); its warning about newer
  // versions would land on the stderr of every command, which a drop-in must keep as it is.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new ObjectStore(where, env, retryPolicy(options.retry), requestTimeoutMs);
}

class ObjectStore implements S3Store {
  readonly url: string;
  readonly location: S3Location;
  readonly #client: S3Client;
  readonly #secrets: readonly string[];
  readonly #retry: RetryPolicy;

  constructor(location: S3Location, env: Environment, retry: RetryPolicy, requestTimeoutMs: number) {
    this.url = formatS3Url(location);
    this.location = location;
    this.#secrets = secretsOf(env);
    this.#retry = retry;
    this.#client = new S3Client(clientConfig({ env, requestTimeoutMs }));
  }

  #key(name: string): string {
    if (name === '' || name.includes('/') || name === '.' || name === '..') {
      throw new S3Error(
        'WAL_ERR_S3_INVALID_NAME',
        `${JSON.stringify(name)} is not a file name: names have no "/".`,
      );
    }
    return this.location.prefix === '' ? name : `${this.location.prefix}/${name}`;
  }

  #context(operation: string, name?: string): RequestContext {
    return {
      operation,
      target: name === undefined ? this.url : `${this.url}/${name}`,
      secrets: this.#secrets,
    };
  }

  #request<T>(
    context: RequestContext,
    signal: AbortSignal | undefined,
    attempt: (signal: AbortSignal) => Promise<T>,
  ) {
    return withRetries(context, this.#retry, signal, attempt);
  }

  async put(name: string, body: Buffer, options: PutOptions = {}) {
    const md5 = createHash('md5').update(body).digest();
    return this.#put(name, { size: body.length, md5, body: () => body }, options);
  }

  async putFile(name: string, path: string, options: PutOptions = {}) {
    this.#key(name);
    const { size, md5 } = await digestFile(path, this.#context('PUT', name), options.signal);
    // Each try reads the file again (a stream cannot be sent twice), never past the size hashed.
    const body = () => (size === 0 ? Buffer.alloc(0) : createReadStream(path, { start: 0, end: size - 1 }));
    return this.#put(name, { size, md5, body }, options);
  }

  async #put(name: string, source: PutSource, options: PutOptions): Promise<'created' | 'identical'> {
    const Key = this.#key(name);
    const md5Hex = source.md5.toString('hex');
    const context = this.#context('PUT', name);
    // A conditional PUT answered 412 whose object then vanishes is tried again, a few times.
    for (let round = 1; ; round += 1) {
      try {
        await this.#request(context, options.signal, async (abortSignal) => {
          const body = source.body();
          try {
            await this.#client.send(
              new PutObjectCommand({
                Bucket: this.location.bucket,
                Key,
                Body: body,
                ContentLength: source.size,
                ContentMD5: source.md5.toString('base64'),
                Metadata: { [MD5_METADATA_KEY]: md5Hex },
                ...(options.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
              }),
              { abortSignal },
            );
          } finally {
            if (!Buffer.isBuffer(body)) body.destroy();
          }
        });
        return 'created';
      } catch (error) {
        if (!(error instanceof S3Error) || error.status !== 412 || !options.ifNoneMatch || round >= 3)
          throw error;
      }
      const outcome = await this.#compareExisting(name, source.size, md5Hex, options.signal);
      if (outcome !== 'gone') return outcome;
    }
  }

  /** After a 412: is the object already there the one we meant to write? */
  async #compareExisting(name: string, size: number, md5Hex: string, signal: AbortSignal | undefined) {
    const existing = await this.head(name, signal ? { signal } : {});
    if (existing === undefined) return 'gone' as const;
    let theirs =
      existing.md5 ?? (existing.etag && /^[0-9a-f]{32}$/i.test(existing.etag) ? existing.etag : undefined);
    if (theirs === undefined && existing.size === size) {
      theirs = createHash('md5')
        .update(await this.get(name, signal ? { signal } : {}))
        .digest('hex');
    }
    if (existing.size === size && theirs?.toLowerCase() === md5Hex) return 'identical' as const;
    throw new S3Error(
      'WAL_ERR_S3_CONFLICT',
      `${this.url}/${name} already exists with other content (${existing.size} bytes, MD5 ${theirs ?? 'unknown'}; ` +
        `ours: ${size} bytes, MD5 ${md5Hex}). It was not overwritten. Another archiver may be writing to the same prefix: ` +
        'give each its own.',
      { status: 412, storeCode: 'PreconditionFailed' },
    );
  }

  async head(name: string, options: { signal?: AbortSignal } = {}): Promise<S3ObjectInfo | undefined> {
    const Key = this.#key(name);
    try {
      const answer = await this.#request(this.#context('HEAD', name), options.signal, (abortSignal) =>
        this.#client.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key }), { abortSignal }),
      );
      const etag = unquote(answer.ETag);
      const md5 = answer.Metadata?.[MD5_METADATA_KEY];
      return {
        name,
        size: answer.ContentLength ?? 0,
        ...(etag ? { etag } : {}),
        ...(md5 ? { md5 } : {}),
        ...(answer.LastModified ? { lastModified: answer.LastModified } : {}),
      };
    } catch (error) {
      if (error instanceof S3Error && error.code === 'WAL_ERR_S3_NOT_FOUND') return undefined;
      throw error;
    }
  }

  async get(
    name: string,
    options: { start?: number; end?: number; signal?: AbortSignal } = {},
  ): Promise<Buffer> {
    const Key = this.#key(name);
    const range = rangeHeader(options.start, options.end);
    if (range === null) return Buffer.alloc(0);
    const context = this.#context('GET', name);
    try {
      return await this.#request(context, options.signal, async (abortSignal) => {
        const answer = await this.#client.send(
          new GetObjectCommand({ Bucket: this.location.bucket, Key, ...(range ? { Range: range } : {}) }),
          { abortSignal },
        );
        const body = await readBody(answer.Body as Readable | undefined, answer.ContentLength);
        if (!range) checkMd5(body, answer.Metadata?.[MD5_METADATA_KEY], context);
        return body;
      });
    } catch (error) {
      // Reading at or past the end gives no bytes, as a file read does.
      if (range && error instanceof S3Error && error.status === 416) return Buffer.alloc(0);
      throw error;
    }
  }

  async getStream(name: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const Key = this.#key(name);
    const answer = await this.#request(this.#context('GET', name), options.signal, (abortSignal) =>
      this.#client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key }), {
        abortSignal: options.signal ?? abortSignal,
      }),
    );
    return answer.Body as Readable;
  }

  async *list(options: { signal?: AbortSignal } = {}): AsyncIterable<S3ObjectInfo> {
    const prefix = this.location.prefix === '' ? '' : `${this.location.prefix}/`;
    let token: string | undefined;
    do {
      const page = await this.#request(this.#context('LIST'), options.signal, (abortSignal) =>
        this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.location.bucket,
            Delimiter: '/',
            ...(prefix ? { Prefix: prefix } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
          { abortSignal },
        ),
      );
      for (const object of page.Contents ?? []) {
        const name = (object.Key ?? '').slice(prefix.length);
        if (name === '' || name.includes('/')) continue;
        const etag = unquote(object.ETag);
        yield {
          name,
          size: object.Size ?? 0,
          ...(etag ? { etag } : {}),
          ...(object.LastModified ? { lastModified: object.LastModified } : {}),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(name: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const Key = this.#key(name);
    try {
      await this.#request(this.#context('DELETE', name), options.signal, (abortSignal) =>
        this.#client.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key }), { abortSignal }),
      );
    } catch (error) {
      if (error instanceof S3Error && error.code === 'WAL_ERR_S3_NOT_FOUND') return;
      throw error;
    }
  }

  close(): void {
    this.#client.destroy();
  }
}

/** A file's size and MD5, read in one pass. */
async function digestFile(path: string, context: RequestContext, signal: AbortSignal | undefined) {
  const hash = createHash('md5');
  let size = 0;
  try {
    for await (const chunk of createReadStream(path, signal ? { signal } : {})) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch (error) {
    if (signal?.aborted) throw aborted(context, signal);
    const reason = error instanceof Error ? error.message : String(error);
    throw new S3Error(
      'WAL_ERR_S3_FILE',
      `${context.operation} ${context.target}: cannot read ${path}: ${reason}.`,
      {
        cause: error,
      },
    );
  }
  return { size, md5: hash.digest() };
}

/**
 * A whole object read back is checked against the MD5 stored with it, so a body damaged on the way
 * (or at rest) is read again, then reported, never returned.
 */
function checkMd5(body: Buffer, stored: string | undefined, context: RequestContext): void {
  if (stored === undefined) return;
  const actual = createHash('md5').update(body).digest('hex');
  if (actual === stored.toLowerCase()) return;
  throw new S3Error(
    'WAL_ERR_S3_CHECKSUM',
    `${context.operation} ${context.target}: the ${body.length} bytes read have MD5 ${actual}, not the ${stored} ` +
      'stored with the object. They were damaged on the way or in the store.',
    { retryable: true, storeCode: 'ChecksumMismatch' },
  );
}

/** `bytes=a-b` for [start, end); `undefined` for the whole object; `null` for no bytes at all. */
export function rangeHeader(start: number | undefined, end: number | undefined): string | undefined | null {
  if (start === undefined && end === undefined) return undefined;
  const first = start ?? 0;
  if (
    !Number.isSafeInteger(first) ||
    first < 0 ||
    (end !== undefined && !(Number.isSafeInteger(end) && end >= 0))
  ) {
    throw new S3Error(
      'WAL_ERR_S3_OPTIONS',
      `a range needs whole numbers of 0 or more, not ${start}..${end}.`,
    );
  }
  if (end !== undefined && end <= first) return null;
  return `bytes=${first}-${end === undefined ? '' : end - 1}`;
}
