import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  formatLsn,
  isValidWalSegmentSize,
  segmentNumberOf,
  segmentOffsetOf,
  segmentStartLsn,
} from '@wal/protocol';
import type { SinkCloseReason, WalSink } from '@wal/stream';
import { type CompressionOptions, type CompressionSpec, resolveCompression } from './compression/index.js';
import { checkDirectoryMatches } from './directory-guard.js';
import { fileSystemError, SinkError } from './errors.js';
import { syncDirectory } from './file-system.js';
import { historyFileExists, writeHistoryFile } from './history-file.js';
import { scanDirectory } from './scan.js';
import { SegmentFile, type SegmentPadding } from './segment-file.js';

export interface DirectorySinkOptions {
  /** The WAL directory (`-D`). It must exist; it is never created. */
  directory: string;
  /** `-Z/--compress`, already parsed. Default none. */
  compression?: CompressionOptions;
  /** Default true; false = `--no-sync`: no fsync of files or the directory, ever. */
  sync?: boolean;
  /**
   * Mode of created files, overriding the one derived from the server's `data_directory_mode`
   * (0600, or 0640 when that mode grants group access).
   */
  fileMode?: number;
  /** pg_receivewal's scan warnings (`segment file "..." has incorrect size ..., skipping`). */
  onWarning?: (message: string) => void;
  /**
   * Messages pg_receivewal prints without -v: `not renaming "X.partial", segment is not complete`
   * when `close('end')` keeps an incomplete segment (not after a failure, where pg_receivewal
   * closes it silently).
   */
  onNotice?: (message: string) => void;
  /** Check every complete file while scanning, like pg_receivewal (slow with many `.lz4` files). */
  checkAllFilesOnScan?: boolean;
  /**
   * How a new uncompressed segment gets its full size before WAL is written into it
   * (docs/adr/0004-padding.md): 'extend' (default) sets the size in one system call, so WAL bytes
   * are written once; 'zeros' writes the zeros first, as pg_receivewal does, which allocates every
   * block up front (a full disk then shows when the segment opens) at the cost of writing it twice.
   * Either way the file holds the same bytes and is renamed into place only at full size.
   */
  padding?: SegmentPadding;
  /**
   * Write uncompressed WAL with blocking pwrite calls on the calling thread instead of through
   * libuv's thread pool. Default false, so a sink inside an application never stalls its event
   * loop on a slow disk; a dedicated receiver process (the `wal receive` CLI) sets it, as
   * pg_receivewal writes: it saves a thread-pool round trip and two context switches per WAL
   * message (bench/README.md). Segment creation, fsync and rename stay asynchronous.
   */
  blockingWrites?: boolean;
}

/** The server facts `prepare()` stores. */
interface ServerFacts {
  systemId: bigint;
  segmentSize: number;
}

const RESOLVED: Promise<void> = Promise.resolve();
const OWNER_ONLY_FILE_MODE = 0o600;
const GROUP_READ_FILE_MODE = 0o640;
/** Staged small writes reach the file at the latest this long after the last write. */
const STAGED_WRITE_DELAY_MS = 50;
/** Temporary names this sink (or pg_receivewal, for history files) may leave after a kill. */
const OWN_TEMPORARY_FILE = /^([0-9A-F]{24}\.partial|[0-9A-F]{8}\.history)\.tmp$/;

/**
 * The WalSink that writes WAL segments into a directory exactly as pg_receivewal does (spec §3.5),
 * with the crash-safety fixes described in README.md. Calls are serialised internally, so a caller
 * that does not await one before the next still gets them in order.
 */
export class DirectorySink implements WalSink {
  readonly directory: string;
  private readonly compression: CompressionSpec;
  private readonly sync: boolean;
  private readonly explicitFileMode: number | undefined;
  private readonly onWarning: ((message: string) => void) | undefined;
  private readonly onNotice: ((message: string) => void) | undefined;
  private readonly checkAllFilesOnScan: boolean;
  private readonly padding: SegmentPadding;
  private readonly blockingWrites: boolean;
  private server: ServerFacts | undefined;
  private fileMode = OWNER_ONLY_FILE_MODE;
  private current: SegmentFile | undefined;
  private durable = 0n;
  private queue: Promise<unknown> = Promise.resolve();
  /** Serialised calls started and not settled yet; while there are none, a call may run at once. */
  private running = 0;
  private readonly settled = (): void => {
    this.running--;
  };
  private stagedWriteTimer: NodeJS.Timeout | undefined;
  /** A failure of a background write of staged bytes, reported by the next call. */
  private deferredError: unknown;

  constructor(options: DirectorySinkOptions) {
    if (typeof options.directory !== 'string' || options.directory === '') {
      throw new SinkError('WAL_ERR_SINK_INVALID_OPTION', 'no target directory specified');
    }
    if (
      options.fileMode !== undefined &&
      (!Number.isInteger(options.fileMode) || options.fileMode & ~0o777)
    ) {
      throw new SinkError(
        'WAL_ERR_SINK_INVALID_OPTION',
        `invalid file mode ${String(options.fileMode)}: expected permission bits like 0o600 or 0o640`,
      );
    }
    this.directory = options.directory;
    this.compression = resolveCompression(options.compression);
    this.sync = options.sync ?? true;
    this.explicitFileMode = options.fileMode;
    this.onWarning = options.onWarning;
    this.onNotice = options.onNotice;
    this.checkAllFilesOnScan = options.checkAllFilesOnScan ?? false;
    if (options.padding !== undefined && options.padding !== 'extend' && options.padding !== 'zeros') {
      throw new SinkError(
        'WAL_ERR_SINK_INVALID_OPTION',
        `invalid padding "${String(options.padding)}": expected "extend" or "zeros"`,
      );
    }
    this.padding = options.padding ?? 'extend';
    this.blockingWrites = options.blockingWrites ?? false;
  }

  get durableLsn(): bigint {
    return this.durable;
  }

  /** Mode new files get (after prepare()). */
  get createdFileMode(): number {
    return this.fileMode;
  }

  prepare(info: { systemId: bigint; segmentSize: number; fileMode?: number }): Promise<void> {
    return this.serialise(async () => {
      if (!isValidWalSegmentSize(info.segmentSize)) {
        throw new SinkError(
          'WAL_ERR_SINK_INVALID_OPTION',
          `invalid WAL segment size ${info.segmentSize}: it must be a power of two between 1 MB and 1 GB`,
        );
      }
      if (this.current !== undefined && this.server?.segmentSize !== info.segmentSize) {
        throw new SinkError(
          'WAL_ERR_SINK_MISMATCH',
          `the server's WAL segment size changed from ${this.server?.segmentSize} to ${info.segmentSize} bytes while segment "${this.current.partialName}" is open`,
        );
      }
      await this.checkDirectory();
      await checkDirectoryMatches(this.directory, info);
      this.server = { systemId: info.systemId, segmentSize: info.segmentSize };
      // `data_directory_mode` is a directory mode (0700 or 0750); files get 0600 or 0640 from it,
      // like pg_receivewal's pg_file_create_mode after SetDataDirectoryCreatePerm.
      const groupAccess = info.fileMode !== undefined && (info.fileMode & 0o070) !== 0;
      this.fileMode = this.explicitFileMode ?? (groupAccess ? GROUP_READ_FILE_MODE : OWNER_ONLY_FILE_MODE);
      await this.removeOwnTemporaryFiles();
    });
  }

  resumePoint(): Promise<{ lsn: bigint; timeline: number } | undefined> {
    return this.serialise(async () => {
      const server = this.requireServer();
      const result = await scanDirectory(this.directory, server.segmentSize, {
        onWarning: this.onWarning,
        checkAllFiles: this.checkAllFilesOnScan,
      });
      // Everything before the resume point is stored (completed segments were fsynced before
      // their rename), like pg_receivewal's lastFlushPosition = startpos.
      if (result.resumePoint !== undefined && result.resumePoint.lsn > this.durable) {
        this.durable = result.resumePoint.lsn;
      }
      return result.resumePoint;
    });
  }

  hasHistoryFile(timeline: number): Promise<boolean> {
    return this.serialise(() => historyFileExists(this.directory, timeline));
  }

  writeHistoryFile(timeline: number, content: Buffer): Promise<void> {
    return this.serialise(() =>
      writeHistoryFile(this.directory, timeline, content, { sync: this.sync, fileMode: this.fileMode }),
    );
  }

  write(timeline: number, startLsn: bigint, data: Buffer): Promise<void> {
    try {
      if (this.writeAtOnce(timeline, startLsn, data)) return RESOLVED;
    } catch (error) {
      return Promise.reject(error);
    }
    return this.serialise(async () => {
      await this.writeNow(timeline, startLsn, data);
      if ((this.current?.stagedLength ?? 0) > 0) this.scheduleStagedWrite();
    });
  }

  /**
   * `write` done on this thread before it returns (true), when nothing is queued and the write
   * stays inside an open segment whose writer works at once (blocking writes: it would block this
   * thread on the queued path anyway); false, having done nothing, otherwise. A failure abandons
   * the segment as a queued write's does and is thrown. See WalSink.writeAtOnce.
   */
  writeAtOnce(timeline: number, startLsn: bigint, data: Buffer): boolean {
    const segment = this.current;
    if (
      !this.idle() ||
      segment?.atOnce !== true ||
      segment.timeline !== timeline ||
      data.length >= segment.remaining ||
      this.positionOf(segment) !== startLsn
    ) {
      return false;
    }
    try {
      segment.write(data); // done when it returns: the segment works at once
    } catch (error) {
      this.abandonAfterFailure();
      throw error;
    }
    if (segment.stagedLength > 0) this.scheduleStagedWrite();
    return true;
  }

  flush(): Promise<bigint> {
    try {
      const durable = this.flushAtOnce();
      if (durable !== undefined) return Promise.resolve(durable);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.serialise(async () => {
      const segment = this.current;
      if (segment === undefined) return this.durable;
      try {
        await segment.sync();
      } catch (error) {
        await this.abandonCurrent();
        throw error;
      }
      this.advanceDurable(this.positionOf(segment));
      return this.durable;
    });
  }

  /**
   * `flush` done on this thread before it returns, with the durable end LSN, when nothing is queued
   * and the open segment's writer works at once (blocking writes: its fsync blocks either way) or
   * none is open; undefined, having done nothing, otherwise. See WalSink.flushAtOnce.
   */
  flushAtOnce(): bigint | undefined {
    if (!this.idle()) return undefined;
    const segment = this.current;
    if (segment === undefined) return this.durable;
    if (!segment.atOnce) return undefined;
    try {
      segment.sync(); // done when it returns: the segment works at once
    } catch (error) {
      this.abandonAfterFailure();
      throw error;
    }
    this.advanceDurable(this.positionOf(segment));
    return this.durable;
  }

  close(reason: SinkCloseReason = 'end'): Promise<void> {
    return this.serialise(async () => {
      const segment = this.current;
      if (segment !== undefined) {
        this.current = undefined;
        const end = this.positionOf(segment);
        await this.closeSegment(segment, reason === 'end');
        this.advanceDurable(end);
      }
      // walmethod->finish(): fsync the directory.
      if (this.sync && this.server !== undefined) {
        try {
          await syncDirectory(this.directory);
        } catch (error) {
          throw fileSystemError(error, 'could not finish writing WAL files', this.directory);
        }
      }
    });
  }

  private async writeNow(timeline: number, startLsn: bigint, data: Buffer): Promise<void> {
    const { segmentSize } = this.requireServer();
    let offset = 0;
    while (offset < data.length) {
      const lsn = startLsn + BigInt(offset);
      let segment = this.current;
      if (segment !== undefined && (segment.timeline !== timeline || this.positionOf(segment) !== lsn)) {
        if (segmentOffsetOf(lsn, segmentSize) !== 0) {
          throw new SinkError(
            'WAL_ERR_SINK_OUT_OF_ORDER',
            `got WAL data at ${formatLsn(lsn)} on timeline ${timeline}, expected ${formatLsn(this.positionOf(segment))} on timeline ${segment.timeline} ("${segment.partialName}" is open)`,
          );
        }
        // A new start at a segment boundary (a restarted stream): end the open segment first.
        this.current = undefined;
        await this.closeSegment(segment);
        segment = undefined;
      }
      if (segment === undefined) {
        const segmentOffset = segmentOffsetOf(lsn, segmentSize);
        if (segmentOffset !== 0) {
          throw new SinkError(
            'WAL_ERR_SINK_OUT_OF_ORDER',
            `received write-ahead log record for offset ${segmentOffset} with no file open (LSN ${formatLsn(lsn)}); streaming must start at a segment start`,
          );
        }
        segment = await SegmentFile.open({
          directory: this.directory,
          timeline,
          segmentNumber: segmentNumberOf(lsn, segmentSize),
          segmentSize,
          compression: this.compression,
          sync: this.sync,
          fileMode: this.fileMode,
          padding: this.padding,
          blockingWrites: this.blockingWrites,
        });
        this.current = segment;
      }
      // One message may cross a segment boundary: write the part that fits, no copy.
      const length = Math.min(data.length - offset, segment.remaining);
      try {
        await segment.write(
          offset === 0 && length === data.length ? data : data.subarray(offset, offset + length),
        );
      } catch (error) {
        await this.abandonCurrent();
        throw error;
      }
      offset += length;
      if (segment.remaining === 0) {
        this.current = undefined;
        await this.closeSegment(segment);
        // Durable at completion (fsync + rename), and also under no-sync like pg_receivewal,
        // whose lastFlushPosition moves at every close_walfile.
        this.advanceDurable(this.segmentEnd(segment, segmentSize));
      }
    }
  }

  /**
   * Small writes are coalesced in the segment's staging buffer; when no further write comes soon,
   * hand them to the file anyway, so readers of the `.partial` are not left behind for long.
   */
  private scheduleStagedWrite(): void {
    if (this.stagedWriteTimer !== undefined) return;
    this.stagedWriteTimer = setTimeout(() => {
      this.stagedWriteTimer = undefined;
      void this.serialise(async () => {
        try {
          await this.current?.writeStaged();
        } catch (error) {
          await this.abandonCurrent();
          this.deferredError = error;
        }
      });
    }, STAGED_WRITE_DELAY_MS);
    this.stagedWriteTimer.unref();
  }

  private async closeSegment(segment: SegmentFile, reportPartial = true): Promise<void> {
    let result: 'completed' | 'partial';
    try {
      result = await segment.close();
    } catch (error) {
      await segment.abandon();
      throw error;
    }
    if (result === 'partial' && reportPartial)
      this.onNotice?.(`not renaming "${segment.partialName}", segment is not complete`);
  }

  private positionOf(segment: SegmentFile): bigint {
    return (
      segmentStartLsn(segment.segmentNumber, this.requireServer().segmentSize) + BigInt(segment.position)
    );
  }

  private segmentEnd(segment: SegmentFile, segmentSize: number): bigint {
    return segmentStartLsn(segment.segmentNumber + 1n, segmentSize);
  }

  private advanceDurable(lsn: bigint): void {
    if (lsn > this.durable) this.durable = lsn;
  }

  private async abandonCurrent(): Promise<void> {
    const segment = this.current;
    this.current = undefined;
    await segment?.abandon();
  }

  private requireServer(): ServerFacts {
    if (this.server === undefined) {
      throw new SinkError(
        'WAL_ERR_SINK_NOT_PREPARED',
        'the WAL directory sink was used before prepare(): call prepare() with the server facts first',
      );
    }
    return this.server;
  }

  /** `-D` must exist and be a directory (pg_receivewal: `could not open directory "%s": %m`). */
  private async checkDirectory(): Promise<void> {
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(this.directory)).isDirectory();
    } catch (error) {
      throw fileSystemError(error, `could not open directory "${this.directory}"`, this.directory);
    }
    if (!isDirectory) {
      throw new SinkError(
        'WAL_ERR_SINK_DIRECTORY_MISSING',
        `could not open directory "${this.directory}": it is not a directory`,
      );
    }
  }

  /** Temporary files a killed run may leave (a half-padded segment, an unrenamed history file). */
  private async removeOwnTemporaryFiles(): Promise<void> {
    try {
      for (const name of await readdir(this.directory)) {
        if (OWN_TEMPORARY_FILE.test(name)) await unlink(join(this.directory, name));
      }
    } catch (error) {
      throw fileSystemError(error, `could not remove temporary files in "${this.directory}"`, this.directory);
    }
  }

  /** No call is queued or running, and no background failure waits to be reported. */
  private idle(): boolean {
    return this.running === 0 && this.deferredError === undefined;
  }

  /**
   * A write or flush done at once failed: abandon the segment as the queued path does (later calls
   * wait for that), while the caller reports the error.
   */
  private abandonAfterFailure(): void {
    this.serialise(() => this.abandonCurrent()).catch(() => {
      // abandonCurrent reports nothing: the first failure is the one the caller has.
    });
  }

  private serialise<T>(operation: () => Promise<T>): Promise<T> {
    const run = () => {
      if (this.deferredError !== undefined) {
        const error = this.deferredError;
        this.deferredError = undefined;
        throw error;
      }
      return operation();
    };
    const result = this.queue.then(run, run);
    this.running++;
    this.queue = result.then(this.settled, this.settled);
    return result;
  }
}
