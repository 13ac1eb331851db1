import { constants } from 'node:fs';
import { type FileHandle, open, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { walFileName } from '@wal/protocol';
import { type CompressionSpec, compressionSuffix } from './compression/index.js';
import { errnoCode, fileSystemError, type SinkError } from './errors.js';
import { createFile, durableRename, syncDirectory, writeZeros } from './file-system.js';
import { chooseSegmentWriter, type Pending, type SegmentWriter } from './segment-writers/index.js';

export interface SegmentFileOptions {
  directory: string;
  timeline: number;
  segmentNumber: bigint;
  segmentSize: number;
  compression: CompressionSpec;
  /** false = `--no-sync`: no fsync of files or the directory at all. */
  sync: boolean;
  /** Mode of files this sink creates (0600, or 0640 with group access). */
  fileMode: number;
  /** How a new uncompressed segment reaches its full size (docs/adr/0004-padding.md). */
  padding: SegmentPadding;
  /** Uncompressed data is written with a blocking pwrite on the calling thread (see DirectorySinkOptions). */
  blockingWrites: boolean;
}

/** 'extend': set the size with one ftruncate; 'zeros': write the zeros, as pg_receivewal does. */
export type SegmentPadding = 'extend' | 'zeros';

/** How `close()` left the file. */
export type SegmentCloseResult = 'completed' | 'partial';

/** Suffix of the temporary name a new uncompressed segment is padded under (docs/adr/0004-padding.md). */
export const PADDING_SUFFIX = '.tmp';

/**
 * Writes shorter than this are copied into a staging buffer and written together: each write
 * handed to the file costs a system call, and through the thread pool a round trip, so 512-byte
 * XLogData messages one by one would cap the sink far below the disk (bench/README.md, "The
 * directory sink's writes"). Larger writes go straight from the caller's buffer to the file.
 */
export const COALESCE_BELOW = 16 * 1024;
const STAGING_SIZE = 64 * 1024;

/**
 * One open WAL segment, written like pg_receivewal's `open_walfile` / `close_walfile` with the
 * directory method of `walmethods.c`: under `<name>[.gz|.lz4|.zst].partial` until complete, then
 * fsync, rename to the final name, fsync the directory. How bytes reach the file is the
 * SegmentWriter chosen at open (blocking pwrite, pwrite on the thread pool, or an encoder); this
 * class has one path for every kind.
 *
 * Crash safety beyond pg_receivewal (a SIGKILL at any moment must leave a directory the next run
 * resumes from without help):
 * - an uncompressed segment is padded to full size under `<name>.partial.tmp` and renamed into
 *   place only when padded, so a `.partial` is always full size (pg_receivewal itself refuses a
 *   short one on its next start);
 * - a compressed `.partial` is opened with O_TRUNC, so no stale bytes of an earlier run remain
 *   behind a shorter new stream (pg_receivewal reuses it without truncating, spec §10.5).
 * Streaming always restarts at the start of the unfinished segment, so no acknowledged byte depends
 * on the old `.partial` content.
 *
 * `write`, `writeStaged` and `sync` return undefined when they are done, else a promise (see
 * Pending): with a writer that works `atOnce` they are always done when they return.
 */
export class SegmentFile {
  /** Bytes of WAL accepted for this segment (uncompressed offset), staged ones included. */
  position = 0;
  /** Bytes of WAL handed to the writer; `position - handedOff` are staged. */
  private handedOff = 0;
  private staging: Buffer | undefined;
  private closed = false;

  private constructor(
    private readonly options: SegmentFileOptions,
    private readonly handle: FileHandle,
    private readonly writer: SegmentWriter,
    /** Final name, e.g. `000000010000000000000003.gz`. */
    readonly fileName: string,
  ) {}

  get partialName(): string {
    return `${this.fileName}.partial`;
  }

  get timeline(): number {
    return this.options.timeline;
  }

  get segmentNumber(): bigint {
    return this.options.segmentNumber;
  }

  get remaining(): number {
    return this.options.segmentSize - this.position;
  }

  /** Bytes accepted but still in the staging buffer. */
  get stagedLength(): number {
    return this.position - this.handedOff;
  }

  /** Whether `write` and `sync` are done when they return, so they may be called at once. */
  get atOnce(): boolean {
    return this.writer.atOnce && !this.closed;
  }

  static async open(options: SegmentFileOptions): Promise<SegmentFile> {
    const baseName = walFileName(options.timeline, options.segmentNumber, options.segmentSize);
    const fileName = baseName + compressionSuffix(options.compression.method);
    const partialPath = join(options.directory, `${fileName}.partial`);
    const handle =
      options.compression.method === 'none'
        ? await openUncompressed(options, partialPath)
        : await openCompressed(options, partialPath);
    return new SegmentFile(options, handle, chooseSegmentWriter(handle, options), fileName);
  }

  /** Writes `data` at the current position; it must fit in the rest of the segment. */
  write(data: Buffer): Pending {
    if (data.length > this.remaining) {
      throw new RangeError(`write of ${data.length} bytes past the end of segment ${this.fileName}`);
    }
    if (data.length < COALESCE_BELOW) {
      if (this.stagedLength + data.length <= STAGING_SIZE) return this.stage(data);
      const staged = this.writeStaged();
      return staged === undefined ? this.stage(data) : staged.then(() => this.stage(data));
    }
    const staged = this.writeStaged();
    return staged === undefined ? this.writeThrough(data) : staged.then(() => this.writeThrough(data));
  }

  /** Writes the staged bytes out (to the page cache; not fsynced). */
  writeStaged(): Pending {
    if (this.stagedLength === 0 || this.staging === undefined) return undefined;
    return this.handOff(this.staging.subarray(0, this.stagedLength));
  }

  /** Makes every byte written so far durable (`dir_sync`): compressed streams are sync-flushed first. */
  sync(): Pending {
    const staged = this.writeStaged();
    return staged === undefined ? this.syncWritten() : staged.then(() => this.syncWritten());
  }

  /**
   * Ends the file (`close_walfile`): a complete segment is renamed to its final name durably; an
   * incomplete one keeps `.partial` ("not renaming ..., segment is not complete") and is fsynced
   * with its directory. Compressed streams get their trailer either way.
   */
  async close(): Promise<SegmentCloseResult> {
    const directory = this.options.directory;
    const complete = this.position === this.options.segmentSize;
    try {
      await this.writeStaged();
      await this.writer.end();
      if (this.options.sync) await this.handle.sync();
    } catch (error) {
      await this.abandon();
      throw fileSystemError(error, `could not close WAL file "${this.partialName}"`, directory);
    }
    this.closed = true;
    try {
      await this.handle.close();
    } catch (error) {
      throw fileSystemError(error, `could not close WAL file "${this.partialName}"`, directory);
    }
    try {
      if (complete) {
        await rename(join(directory, this.partialName), join(directory, this.fileName));
      }
      if (this.options.sync) await syncDirectory(directory);
    } catch (error) {
      throw fileSystemError(
        error,
        complete
          ? `could not rename file "${this.partialName}" to "${this.fileName}"`
          : `could not fsync directory "${directory}"`,
        directory,
      );
    }
    return complete ? 'completed' : 'partial';
  }

  /** After a failure: release the descriptor, keep whatever is on disk under its `.partial` name. */
  async abandon(): Promise<void> {
    this.writer.destroy();
    if (this.closed) return;
    this.closed = true;
    await this.handle.close().catch(() => {});
  }

  /** Copies a small write into the staging buffer, which has room for it. */
  private stage(data: Buffer): undefined {
    this.staging ??= Buffer.allocUnsafe(STAGING_SIZE);
    data.copy(this.staging, this.stagedLength);
    this.position += data.length;
    return undefined;
  }

  /** A large write, from the caller's buffer; nothing is staged. */
  private writeThrough(data: Buffer): Pending {
    const written = this.handOff(data);
    if (written !== undefined) {
      return written.then(() => {
        this.position += data.length;
      });
    }
    this.position += data.length;
    return undefined;
  }

  /** Gives `data`, which starts at `handedOff`, to the writer. */
  private handOff(data: Buffer): Pending {
    let written: Pending;
    try {
      written = this.writer.write(data, this.handedOff);
    } catch (error) {
      throw this.writeFailure(error, data.length);
    }
    if (written === undefined) {
      this.handedOff += data.length;
      return undefined;
    }
    return written.then(
      () => {
        this.handedOff += data.length;
      },
      (error: unknown) => {
        throw this.writeFailure(error, data.length);
      },
    );
  }

  private syncWritten(): Pending {
    let synced: Pending;
    try {
      synced = this.writer.sync();
    } catch (error) {
      throw this.syncFailure(error);
    }
    return synced?.catch((error: unknown) => {
      throw this.syncFailure(error);
    });
  }

  private writeFailure(error: unknown, length: number): SinkError {
    return fileSystemError(
      error,
      `could not write ${length} bytes to WAL file "${this.partialName}"`,
      this.options.directory,
    );
  }

  private syncFailure(error: unknown): SinkError {
    return fileSystemError(error, `could not fsync WAL file "${this.partialName}"`, this.options.directory);
  }
}

async function openUncompressed(options: SegmentFileOptions, partialPath: string): Promise<FileHandle> {
  const { directory, segmentSize } = options;
  const partialName = partialPath.slice(directory.length + 1);
  let existingSize: number | undefined;
  try {
    existingSize = (await stat(partialPath)).size;
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') {
      throw fileSystemError(error, `could not get size of write-ahead log file "${partialName}"`, directory);
    }
  }
  if (existingSize === segmentSize) {
    // Already padded by an earlier run: reuse it in place and fsync it, as pg_receivewal does,
    // because that run may have died before its data reached the disk.
    let handle: FileHandle | undefined;
    try {
      handle = await open(partialPath, constants.O_WRONLY);
      if (options.sync) await handle.sync();
      return handle;
    } catch (error) {
      await handle?.close().catch(() => {});
      throw fileSystemError(
        error,
        `could not open existing write-ahead log file "${partialName}"`,
        directory,
      );
    }
  }
  // New, empty, or of a size no run of ours leaves behind (a pg_receivewal killed while padding):
  // build a full-size replacement under a temporary name. Its content is re-streamed from the
  // segment start, so nothing in the old file is needed.
  const temporaryPath = `${partialPath}${PADDING_SUFFIX}`;
  let handle: FileHandle | undefined;
  try {
    handle = await createFile(temporaryPath, options.fileMode);
    // Both read back as zeros; 'extend' leaves the blocks to be allocated when WAL is written.
    if (options.padding === 'zeros') await writeZeros(handle, segmentSize);
    else await handle.truncate(segmentSize);
    await durableRename(handle, temporaryPath, partialPath, directory, options.sync);
    return handle;
  } catch (error) {
    await handle?.close().catch(() => {});
    // Give back the space of a half-padded file (ENOSPC is the likely failure with 'zeros').
    await unlink(temporaryPath).catch(() => {});
    // pg_receivewal's words: it pads while opening, so a full disk shows here with 'zeros'.
    throw fileSystemError(error, `could not open write-ahead log file "${partialName}"`, directory);
  }
}

async function openCompressed(options: SegmentFileOptions, partialPath: string): Promise<FileHandle> {
  const { directory } = options;
  const partialName = partialPath.slice(directory.length + 1);
  let handle: FileHandle | undefined;
  try {
    handle = await createFile(partialPath, options.fileMode);
    if (options.sync) {
      await handle.sync();
      await syncDirectory(directory);
    }
    return handle;
  } catch (error) {
    await handle?.close().catch(() => {});
    throw fileSystemError(error, `could not open write-ahead log file "${partialName}"`, directory);
  }
}
