import { createHash } from 'node:crypto';
import {
  openS3Store,
  parseS3Url,
  S3Error,
  type S3ObjectInfo,
  type S3Store,
  type S3StoreOptions,
} from '@wal/s3';
import { ArchiveError } from './errors.js';
import type { ArchiveObject, ArchiveSource } from './source.js';

/** The first range of a stream: a segment's first page header, checked before more is fetched. */
const FIRST_RANGE = 64 * 1024;
/** Further ranges: each one request the store retries by itself; two are held at most. */
const RANGE = 8 * 1024 * 1024;

/**
 * An archive under `s3://BUCKET/PREFIX`: objects named `PREFIX/FILENAME`, exactly the file names
 * of a directory archive. Configured from the AWS environment (credentials, region,
 * `AWS_ENDPOINT_URL`); `@wal/s3` retries what can pass (5xx, SlowDown, resets, timeouts) before a
 * failure reaches here. Messages name the `s3://` URL, never a secret.
 */
export function objectStoreSource(location: string, options: S3StoreOptions = {}): ArchiveSource {
  let url: string;
  try {
    const { bucket, prefix } = parseS3Url(location);
    url = prefix === '' ? `s3://${bucket}` : `s3://${bucket}/${prefix}`;
  } catch (error) {
    throw new ArchiveError('WAL_ERR_ARCHIVE_INVALID_LOCATION', reasonOf(error), { cause: error });
  }
  let store: S3Store | undefined;
  // What the last HEAD of each name answered (its size and MD5), for the stream that follows.
  const looked = new Map<string, S3ObjectInfo>();
  // Opened on first use, and again after close(): a file found before close() can still be read.
  const opened = () => {
    store ??= openS3Store(url, options);
    return store;
  };
  const locate = (name: string) => `${url}/${name}`;
  return {
    location: url,
    locate,
    check: () =>
      request(`could not list the archive "${url}"`, async () => {
        // One listing request: a missing bucket or a store that is down fails it; a HEAD of a
        // missing object cannot tell those from "not there".
        for await (const _ of opened().list()) break;
      }),
    list: () =>
      request(`could not list the archive "${url}"`, async () => {
        const objects: ArchiveObject[] = [];
        for await (const { name, size } of opened().list()) objects.push({ name, size });
        return objects;
      }),
    stat: (name) =>
      request(`could not look up "${locate(name)}"`, async () => {
        const found = await opened().head(name);
        if (found === undefined) return undefined;
        looked.set(name, found);
        return { name, size: found.size };
      }),
    read: (name) => request(`could not read "${locate(name)}"`, () => opened().get(name)),
    stream: async (name) => {
      const info =
        looked.get(name) ?? (await request(`could not read "${locate(name)}"`, () => opened().head(name)));
      if (info === undefined) throw vanished(locate(name));
      return ranges(opened(), info, locate(name));
    },
    readRange: (name, start, end) =>
      request(`could not read "${locate(name)}"`, () => opened().get(name, { start, end })),
    remove: (name) =>
      request(
        `could not remove file "${locate(name)}"`,
        () => opened().delete(name),
        'WAL_ERR_ARCHIVE_REMOVE',
      ),
    async close() {
      store?.close();
      store = undefined;
    },
  };
}

/**
 * An object as consecutive range reads, the next one under way while the caller takes the last:
 * a reset mid-object costs one range, which the store retries, not the whole download. The first
 * range is small and nothing more is asked for until the caller has taken it, so a file that is
 * not the segment asked for is refused before the rest is fetched. The object's MD5, kept in its
 * metadata by `@wal/s3`, is checked at the end.
 */
async function* ranges(store: S3Store, info: S3ObjectInfo, where: string): AsyncGenerator<Buffer> {
  const hash = info.md5 === undefined ? undefined : createHash('md5');
  const controller = new AbortController();
  const fetch = (start: number, length: number) => {
    const end = Math.min(info.size, start + length);
    const read = store.get(info.name, { start, end, signal: controller.signal }).then((chunk) => {
      if (chunk.length !== end - start) throw changed(where, info.size);
      return chunk;
    });
    read.catch(() => {}); // Awaited below, or abandoned when the caller stops reading.
    return { read, end };
  };
  try {
    let next = info.size > 0 ? fetch(0, FIRST_RANGE) : undefined;
    for (let first = true; next !== undefined; first = false) {
      const { read, end } = next;
      const chunk = await request(`could not read "${where}"`, () => read);
      hash?.update(chunk);
      // The range after the first is asked for only once the caller has taken the first.
      if (first) yield chunk;
      next = end < info.size ? fetch(end, RANGE) : undefined;
      if (!first) yield chunk;
    }
  } finally {
    controller.abort();
  }
  if (hash !== undefined && hash.digest('hex') !== info.md5) {
    throw new ArchiveError(
      'WAL_ERR_ARCHIVE_UNREADABLE',
      `could not read "${where}": its bytes do not match the MD5 stored with it (${info.md5}). Reading it again may succeed; if not, the object is damaged: restore it from another copy of the archive.`,
      { retryable: true },
    );
  }
}

function vanished(where: string): ArchiveError {
  return new ArchiveError(
    'WAL_ERR_ARCHIVE_UNREADABLE',
    `could not read "${where}": it is no longer in the archive`,
    {
      retryable: true,
    },
  );
}

function changed(where: string, size: number): ArchiveError {
  return new ArchiveError(
    'WAL_ERR_ARCHIVE_UNREADABLE',
    `could not read "${where}": it is no longer the object of ${size} bytes it was a moment before (replaced while being read?)`,
    { retryable: true },
  );
}

async function request<T>(
  action: string,
  body: () => Promise<T>,
  code: 'WAL_ERR_ARCHIVE_UNREADABLE' | 'WAL_ERR_ARCHIVE_REMOVE' = 'WAL_ERR_ARCHIVE_UNREADABLE',
): Promise<T> {
  try {
    return await body();
  } catch (error) {
    throw storeError(error, action, code);
  }
}

/**
 * A failure of the store, after `@wal/s3`'s own retries, as `WAL_ERR_ARCHIVE_UNREADABLE` (or
 * `WAL_ERR_ARCHIVE_REMOVE` for a DELETE): the restore tries again and then stops recovery
 * (exit 255), as for an unreadable directory. A missing object here was listed or found a moment
 * before: it is a failure too, never "not found".
 */
function storeError(
  error: unknown,
  action: string,
  code: 'WAL_ERR_ARCHIVE_UNREADABLE' | 'WAL_ERR_ARCHIVE_REMOVE',
): ArchiveError {
  if (error instanceof ArchiveError) return error;
  // `@wal/s3`'s messages already say what to check; other failures get the archive's hint.
  const hint =
    error instanceof S3Error ? '' : '. Check the object store, its AWS configuration and permissions.';
  return new ArchiveError(code, `${action}: ${reasonOf(error)}${hint}`, {
    cause: error,
    retryable: true,
  });
}

function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return error instanceof S3Error ? message : message.replace(/\.$/, '');
}
