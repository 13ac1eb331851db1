import type { S3StoreOptions } from '@wal/s3';
import { directorySource } from './directory-source.js';

/** One file of an archive, as its listing tells it. */
export interface ArchiveObject {
  name: string;
  /** Its stored size in bytes; undefined where the listing does not tell (a directory's names). */
  size: number | undefined;
}

/**
 * Where an archive's files are read from: a directory or an object store. The reader (find,
 * read, restore, verify) uses only this, so each kind of storage is one implementation of it
 * (docs/adr/0012-reading-object-storage.md). Every failure is an `ArchiveError`; a file that
 * is not there is an answer (`undefined`), never an error.
 */
export interface ArchiveSource {
  /** The archive as the user named it, for messages: a directory path or an `s3://` URL. */
  readonly location: string;
  /** Where one file is, for messages: its path or its object's URL. */
  locate(name: string): string;
  /**
   * Fails when the archive itself cannot be reached (a missing directory or bucket, a store that
   * is down). Called before answering "not found": that answer ends a recovery.
   */
  check(): Promise<void>;
  /** Every file name in the archive with its size, in no particular order. */
  list(): Promise<ArchiveObject[]>;
  /** The file `name`, or undefined when the archive does not have it. */
  stat(name: string): Promise<ArchiveObject | undefined>;
  /** A whole file. */
  read(name: string): Promise<Buffer>;
  /**
   * A file as chunks; a read failure is the iteration's error. Nothing is read ahead of what the
   * caller asks for beyond one chunk, so a caller that stops early has not fetched the rest.
   */
  stream(name: string): Promise<AsyncIterable<Buffer>>;
  /** Bytes `start` to `end` (exclusive) of a file; fewer when the file ends before `end`. */
  readRange(name: string, start: number, end: number): Promise<Buffer>;
  /**
   * Removes a file (for `wal cleanup`); one that is already gone is no error, since an object
   * store cannot tell. A failure is `WAL_ERR_ARCHIVE_REMOVE`.
   */
  remove(name: string): Promise<void>;
  /** Lets go of connections; a later call opens them again. */
  close(): Promise<void>;
}

/** An `s3://BUCKET/PREFIX` location: every other location is a directory path. */
export function isObjectStoreLocation(location: string): boolean {
  return /^s3:\/\//i.test(location);
}

/**
 * The source for a location: a directory path, or an `s3://BUCKET/PREFIX` URL (configured from
 * the AWS environment). The object-store client is imported only for an `s3://` URL, so reading
 * a directory never loads it.
 */
export async function openArchive(location: string, options: OpenOptions = {}): Promise<ArchiveSource> {
  if (!isObjectStoreLocation(location)) return directorySource(location);
  const { objectStoreSource } = await import('./s3-source.js');
  return objectStoreSource(location, options.objectStore);
}

export interface OpenOptions {
  /**
   * For an `s3://` location: the AWS configuration variables (default `process.env`), and the
   * store's own retries and request timeout (`@wal/s3`'s defaults).
   */
  objectStore?: S3StoreOptions;
}

/**
 * Runs `body` with the source for `archive`: a source is used as given; a location is opened,
 * and its connections let go of when `body` is done.
 */
export async function withArchive<T>(
  archive: string | ArchiveSource,
  body: (source: ArchiveSource) => Promise<T>,
): Promise<T> {
  if (typeof archive !== 'string') return body(archive);
  const source = await openArchive(archive);
  try {
    return await body(source);
  } finally {
    await source.close();
  }
}
