import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { isValidWalSegmentSize, parseWalFileName } from '@wal/protocol';
import { decodePageHeader, PageInfo } from '@wal/protocol/wal-format';
import { ArchiveError } from './errors.js';
import { type ArchiveFile, findArchiveFile } from './find.js';
import { readArchiveFile } from './read.js';
import { type ArchiveSource, withArchive } from './source.js';

const LONG_PAGE_HEADER_SIZE = 40;
const ZEROS = Buffer.alloc(1024 * 1024);

export interface RestoreOptions {
  /** The archive: a directory path, an `s3://BUCKET/PREFIX` URL, or a source opened before. */
  archive: string | ArchiveSource;
  /** The name PostgreSQL asks for (`%f`). */
  wanted: string;
  /** Where to put it (`%p`, relative to the working directory or absolute). */
  target: string;
  /** Serve a newest `.partial`, padded with zeros (default true). */
  partial?: boolean;
  /** fsync the file and its directory (default true). */
  sync?: boolean;
  /** Stops the copy (the temporary file is removed, the target untouched) and rejects with its reason. */
  signal?: AbortSignal;
}

export type RestoreResult =
  | { status: 'not-found' }
  | {
      status: 'restored';
      file: ArchiveFile;
      bytes: number;
      paddedBytes: number;
      /** A segment's size, from its first page header; undefined for a history file. */
      segmentSize: number | undefined;
    };

/**
 * Restores one file as `restore_command` must: found in any form, decompressed into a temporary
 * file beside the target, size-checked, fsynced, renamed over the target, and the directory
 * fsynced, so the target is never seen half-written. A segment must decompress to exactly its
 * segment size (read from its first page header); a `.partial` may be shorter and is padded.
 */
export async function restoreFromArchive(options: RestoreOptions): Promise<RestoreResult> {
  return withArchive(options.archive, async (source) => {
    const file = await findArchiveFile(source, options.wanted, { partial: options.partial ?? true });
    return file === undefined ? { status: 'not-found' } : restoreFile(file, options);
  });
}

async function restoreFile(file: ArchiveFile, options: RestoreOptions): Promise<RestoreResult> {
  const sync = options.sync ?? true;
  const directory = dirname(options.target);
  const temporary = join(directory, `.${basename(options.target)}.wal-restore-${process.pid}.tmp`);
  const handle = await openTarget(temporary);
  let done = false;
  try {
    const { bytes, paddedBytes, segmentSize } = await copyInto(file, handle, temporary, options.signal);
    options.signal?.throwIfAborted();
    if (sync) await writeStep(() => handle.sync(), `could not fsync "${temporary}"`);
    await writeStep(() => handle.close(), `could not close "${temporary}"`);
    await writeStep(
      () => rename(temporary, options.target),
      `could not rename "${temporary}" to "${options.target}"`,
    );
    done = true;
    if (sync) await syncDirectory(directory);
    return { status: 'restored', file, bytes, paddedBytes, segmentSize };
  } finally {
    if (!done) {
      await handle.close().catch(() => {});
      await unlink(temporary).catch(() => {});
    }
  }
}

async function openTarget(path: string): Promise<FileHandle> {
  // A temporary file of a killed earlier run with our pid is ours to replace.
  await unlink(path).catch(() => {});
  return writeStep(() => open(path, 'wx', 0o600), `could not create "${path}"`);
}

interface Copied {
  bytes: number;
  paddedBytes: number;
  segmentSize: number | undefined;
}

async function copyInto(
  file: ArchiveFile,
  handle: FileHandle,
  temporary: string,
  signal: AbortSignal | undefined,
): Promise<Copied> {
  let bytes = 0;
  let segmentSize: number | undefined;
  let head: Buffer | undefined;
  for await (const chunk of readArchiveFile(file)) {
    signal?.throwIfAborted();
    let data = chunk;
    if (file.kind === 'segment' && segmentSize === undefined) {
      // The first chunks are collected until the 40-byte long page header is whole (copied once).
      head = head === undefined ? chunk : Buffer.concat([head, chunk]);
      if (head.length < LONG_PAGE_HEADER_SIZE) continue;
      segmentSize = checkFirstPage(file, head);
      checkStoredSize(file, segmentSize);
      data = head;
    }
    bytes += data.length;
    if (segmentSize !== undefined && bytes > segmentSize)
      throw wrongSize(file, `more than ${segmentSize} bytes`, segmentSize);
    await writeAll(handle, data, temporary);
  }
  if (file.kind === 'history') return { bytes, paddedBytes: 0, segmentSize };
  if (segmentSize === undefined) throw wrongSize(file, `${bytes} bytes`, undefined);
  if (bytes === segmentSize) return { bytes, paddedBytes: 0, segmentSize };
  if (!file.partial) throw wrongSize(file, `${bytes} bytes`, segmentSize);
  const paddedBytes = segmentSize - bytes;
  for (let left = paddedBytes; left > 0; left -= ZEROS.length) {
    await writeAll(handle, ZEROS.subarray(0, Math.min(left, ZEROS.length)), temporary);
  }
  return { bytes, paddedBytes, segmentSize };
}

/**
 * The segment size from the first page's long header (`xlp_seg_size`), checked against the name:
 * the page address must be the start of the segment `%f` names. This catches a file stored under
 * the wrong name and data that are not WAL at all, whatever the compression.
 */
function checkFirstPage(file: ArchiveFile, head: Buffer): number {
  const header = decodePageHeader(head.subarray(0, LONG_PAGE_HEADER_SIZE));
  const segmentSize = header.long?.segmentSize ?? 0;
  const notWal = (what: string) =>
    new ArchiveError(
      'WAL_ERR_ARCHIVE_CORRUPT',
      `"${file.path}" is not the WAL segment ${file.wanted}: ${what}. The file is damaged or misnamed; restore it from another copy of the archive.`,
    );
  if ((header.info & PageInfo.LONG_HEADER) === 0 || !isValidWalSegmentSize(segmentSize)) {
    throw notWal('its first page has no valid long page header');
  }
  const parsed = parseWalFileName(file.wanted, segmentSize);
  if (parsed === undefined || header.pageAddress !== parsed.segmentNumber * BigInt(segmentSize)) {
    throw notWal(
      `its first page is at ${header.pageAddress.toString(16).toUpperCase()}, not at the start of that segment`,
    );
  }
  return segmentSize;
}

/**
 * A plain complete segment's stored size is known before it is read (a listing or a HEAD): one of
 * another size is refused after its first page, not after downloading it.
 */
function checkStoredSize(file: ArchiveFile, segmentSize: number): void {
  if (file.compression !== 'none' || file.partial || file.size === undefined) return;
  if (file.size !== segmentSize) throw wrongSize(file, `${file.size} bytes`, segmentSize);
}

function wrongSize(file: ArchiveFile, actual: string, segmentSize: number | undefined): ArchiveError {
  const expected = segmentSize === undefined ? 'a whole WAL segment' : `${segmentSize} bytes`;
  return new ArchiveError(
    'WAL_ERR_ARCHIVE_WRONG_SIZE',
    `"${file.path}" decompresses to ${actual} instead of ${expected}. The file is damaged or truncated; restore it from another copy of the archive.`,
  );
}

async function writeAll(handle: FileHandle, data: Buffer, path: string): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await writeStep(
      () => handle.write(data, offset, data.length - offset),
      `could not write to "${path}"`,
    );
    offset += bytesWritten;
  }
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await writeStep(() => open(directory, 'r'), `could not open directory "${directory}"`);
  try {
    await writeStep(() => handle.sync(), `could not fsync directory "${directory}"`);
  } finally {
    await handle.close();
  }
}

/** Runs a step on the target side; its failure is `WAL_ERR_ARCHIVE_WRITE`. */
async function writeStep<T>(step: () => Promise<T>, action: string): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof ArchiveError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ArchiveError(
      'WAL_ERR_ARCHIVE_WRITE',
      `${action}: ${reason}. Check free space and permissions of the target directory.`,
      {
        cause: error,
        retryable: true,
      },
    );
  }
}
