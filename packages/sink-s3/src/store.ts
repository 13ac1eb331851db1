/**
 * What the sink needs of an object store: the part of `@wal/s3`'s S3Store it uses, so the sink
 * does not load the AWS SDK itself and a caller passes the store it opened. Names are relative to
 * the store's prefix (`PREFIX/NAME` in the bucket); they are the file names of a directory archive.
 */
export interface UploadStore {
  /** `s3://bucket/prefix`, for messages. */
  readonly url: string;
  /**
   * Stores `body` under `name`, verified by the store's checksum. With `ifNoneMatch` the object
   * must not exist yet: 'identical' when it exists with the same content; an existing object with
   * other content is an error (code WAL_ERR_S3_CONFLICT). Transient failures are retried inside.
   */
  put(
    name: string,
    body: Buffer,
    options?: { ifNoneMatch?: boolean; signal?: AbortSignal },
  ): Promise<'created' | 'identical'>;
  /**
   * Optional: `put` of a file's bytes, streamed from `path` (its size and MD5 read first), so a
   * segment of any size is never held in memory. Used for complete segments and history files.
   */
  putFile?(
    name: string,
    path: string,
    options?: { ifNoneMatch?: boolean; signal?: AbortSignal },
  ): Promise<'created' | 'identical'>;
  /** Every object under the prefix. */
  list(): AsyncIterable<StoredObject>;
  delete(name: string): Promise<void>;
}

export interface StoredObject {
  name: string;
  size: number;
  /** The store's entity tag, quoted or not; the MD5 of the content for a single-part upload. */
  etag?: string | undefined;
}
