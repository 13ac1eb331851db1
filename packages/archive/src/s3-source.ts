import { openS3Store, parseS3Url, type S3Store, type S3StoreOptions } from '@wal/s3';
import { ArchiveError } from './errors.js';
import type { ArchiveObject, ArchiveSource } from './source.js';

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
        return found === undefined ? undefined : { name, size: found.size };
      }),
    read: (name) => request(`could not read "${locate(name)}"`, () => opened().get(name)),
    stream: (name) => request(`could not read "${locate(name)}"`, () => opened().getStream(name)),
    readRange: (name, start, end) =>
      request(`could not read "${locate(name)}"`, () => opened().get(name, { start, end })),
    async close() {
      store?.close();
      store = undefined;
    },
  };
}

async function request<T>(action: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    throw storeError(error, action);
  }
}

/**
 * A failure of the store, after `@wal/s3`'s own retries, as `WAL_ERR_ARCHIVE_UNREADABLE`: the
 * restore tries again and then stops recovery (exit 255), as for an unreadable directory. A
 * missing object here was listed or found a moment before: it is a failure too, never "not found".
 */
function storeError(error: unknown, action: string): ArchiveError {
  if (error instanceof ArchiveError) return error;
  return new ArchiveError(
    'WAL_ERR_ARCHIVE_UNREADABLE',
    `${action}: ${reasonOf(error)}. Check the object store, its AWS configuration and permissions.`,
    { cause: error, retryable: true },
  );
}

function reasonOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\.$/, '');
}
