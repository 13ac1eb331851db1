import { historyFileName } from '@wal/protocol';
import {
  compressionSuffix,
  DirectorySink,
  type DirectorySinkOptions,
  resolveCompression,
} from '@wal/sink-fs';
import type { SinkCloseReason, WalSink } from '@wal/stream';
import { S3SinkError } from './errors.js';
import type { UploadStore } from './store.js';
import { Uploader } from './uploader.js';

export interface S3SinkOptions extends Omit<DirectorySinkOptions, 'directory'> {
  /** Where the archive goes: an opened store (`@wal/s3`'s `openS3Store(url)`). */
  store: UploadStore;
  /** The local spool directory, written like a pg_receivewal archive directory. It must exist. */
  spool: string;
  /**
   * What the sink reports durable (and so the flush position the server sees): 'local' (default)
   * what the spool has durable; 'remote' what the store has confirmed, so the server keeps its WAL
   * until it is off this machine.
   */
  ack?: 'local' | 'remote';
  /**
   * Upload the open segment's `.partial` once its oldest byte not in the store is this old
   * (default 60 000 ms; 0: only when `finish()` runs). Bounds what losing the machine loses.
   */
  partialUploadIntervalMs?: number;
  /**
   * At most this many files wait in the spool for the store (default 4); a write that would
   * complete one more segment waits, so the stream stops reading from the server (one that
   * completes more segments than this at once waits for an empty queue).
   */
  maxQueuedFiles?: number;
  /**
   * At most this many complete segments are uploaded at once (default 4); history files and
   * `.partial`s go alone. The confirmed position still moves only over segments stored without a gap.
   */
  uploadConcurrency?: number;
  /** Waits before trying a failed upload again, after the store's own retries (default 1 s up to 30 s). */
  retryDelayMs?: { first: number; max: number };
  /** A failed upload that is tried again after `retryInMs`. */
  onUploadRetry?: (error: unknown, retryInMs: number) => void;
  /** Ends the waits for the store (room in the spool, the first listing) with WAL_ERR_SINK_S3_ABORTED. */
  signal?: AbortSignal;
}

export interface UploadStatus {
  /** Spool files waiting for the store (complete segments, history files, left-behind `.partial`s). */
  queuedFiles: number;
  queuedBytes: number;
  /** The end of the WAL the store holds without a gap (the flush position of `ack: 'remote'`). */
  confirmedLsn: bigint;
}

export const DEFAULT_PARTIAL_UPLOAD_INTERVAL_MS = 60_000;
export const DEFAULT_MAX_QUEUED_FILES = 4;
export const DEFAULT_UPLOAD_CONCURRENCY = 4;

/**
 * The WalSink that archives into object storage (docs/adr/0011-s3-sink.md): WAL is written to a
 * spool directory by a DirectorySink, exactly as `wal receive -D DIR` writes one (crash safe,
 * resumable), and an Uploader moves finished files to the store. Calls run in order: a write that
 * waits for room in the spool holds every later call behind it.
 */
export class S3Sink implements WalSink {
  readonly #spool: DirectorySink;
  readonly #options: S3SinkOptions;
  readonly #suffix: string;
  #uploader: Uploader | undefined;
  #segmentSize = 0;
  /** Calls chained behind a waiting write, not yet handed to the spool sink. */
  #queued = 0;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(options: S3SinkOptions) {
    const {
      store,
      spool,
      ack,
      partialUploadIntervalMs,
      maxQueuedFiles,
      uploadConcurrency,
      ...directoryOptions
    } = options;
    checkOptions(options);
    this.#spool = new DirectorySink({ ...directoryOptions, directory: spool });
    this.#options = options;
    this.#suffix = compressionSuffix(resolveCompression(options.compression).method);
  }

  get durableLsn(): bigint {
    return this.#acknowledged(this.#spool.durableLsn);
  }

  /** The store's URL (`s3://bucket/prefix`), for messages. */
  get storeUrl(): string {
    return this.#options.store.url;
  }

  /** The spool directory. */
  get spool(): string {
    return this.#options.spool;
  }

  uploadStatus(): UploadStatus {
    const spoolDurable = this.#spool.durableLsn;
    return this.#uploader?.status(spoolDurable) ?? { queuedFiles: 0, queuedBytes: 0, confirmedLsn: 0n };
  }

  async prepare(info: { systemId: bigint; segmentSize: number; fileMode?: number }): Promise<void> {
    this.#throwIfFailed();
    await this.#spool.prepare(info);
    if (this.#uploader !== undefined) return;
    const { store, spool, signal, onUploadRetry } = this.#options;
    const uploader = new Uploader({
      store,
      spool,
      segmentSize: info.segmentSize,
      compressionSuffix: this.#suffix,
      partialUploadIntervalMs: this.#options.partialUploadIntervalMs ?? DEFAULT_PARTIAL_UPLOAD_INTERVAL_MS,
      maxQueuedFiles: this.#options.maxQueuedFiles ?? DEFAULT_MAX_QUEUED_FILES,
      uploadConcurrency: this.#options.uploadConcurrency ?? DEFAULT_UPLOAD_CONCURRENCY,
      flushSpool: () => this.#spool.flush(),
      retryDelayMs: this.#options.retryDelayMs ?? { first: 1000, max: 30_000 },
      onUploadRetry,
      signal,
    });
    // Kept only once it started: a spool that cannot be read fails this prepare() and the next.
    await uploader.start();
    this.#segmentSize = info.segmentSize;
    this.#uploader = uploader;
  }

  /** The later of the spool's resume point and the store's (FindStreamingStart over both). */
  async resumePoint(): Promise<{ lsn: bigint; timeline: number } | undefined> {
    const spool = await this.#spool.resumePoint();
    const store = (await this.#requireUploader().index()).resumePoint();
    if (spool === undefined || store === undefined) return spool ?? store;
    if (store.lsn !== spool.lsn) return store.lsn > spool.lsn ? store : spool;
    return store.timeline > spool.timeline ? store : spool;
  }

  async hasHistoryFile(timeline: number): Promise<boolean> {
    if (await this.#spool.hasHistoryFile(timeline)) return true;
    return (await this.#requireUploader().index()).has(historyFileName(timeline));
  }

  writeHistoryFile(timeline: number, content: Buffer): Promise<void> {
    return this.#inOrder(undefined, async () => {
      await this.#spool.writeHistoryFile(timeline, content);
      this.#requireUploader().historyWritten(timeline);
    });
  }

  write(timeline: number, startLsn: bigint, data: Buffer): Promise<void> {
    const endLsn = startLsn + BigInt(data.length);
    const completions = this.#completions(startLsn, endLsn);
    const uploader = this.#uploader;
    const gate =
      completions === 0 || uploader === undefined ? undefined : () => uploader.waitForRoom(completions);
    return this.#inOrder(gate, async () => {
      this.#handOver(timeline, startLsn, endLsn);
      await this.#spool.write(timeline, startLsn, data);
      this.#accountCompleted(timeline, startLsn, endLsn);
    });
  }

  writeAtOnce(timeline: number, startLsn: bigint, data: Buffer): boolean {
    const endLsn = startLsn + BigInt(data.length);
    if (this.#queued > 0 || this.#uploader?.failure !== undefined || this.#completions(startLsn, endLsn) > 0)
      return false;
    this.#handOver(timeline, startLsn, endLsn);
    return this.#spool.writeAtOnce(timeline, startLsn, data);
  }

  async flush(): Promise<bigint> {
    return this.#acknowledged(await this.#inOrder(undefined, () => this.#spool.flush()));
  }

  flushAtOnce(): bigint | undefined {
    if (this.#queued > 0) return undefined;
    this.#throwIfFailed();
    const durable = this.#spool.flushAtOnce();
    return durable === undefined ? undefined : this.#acknowledged(durable);
  }

  close(reason?: SinkCloseReason): Promise<void> {
    const failure = this.#uploader?.failure;
    if (failure === undefined) return this.#inOrder(undefined, () => this.#spool.close(reason));
    // After a failed upload the spool still closes its open segment (kept as `.partial`, durably,
    // its file closed) for the next run; the close then reports the upload's failure.
    return this.#tail
      .then(() => this.#spool.close(reason))
      .then(() => {
        throw failure;
      });
  }

  /**
   * Uploads what waits in the spool and the open segment's `.partial`, then stops the uploader;
   * call it after the stream ended. Rejects with the store's error if an upload fails: the spool
   * keeps the file and the next run uploads it.
   */
  async finish(): Promise<void> {
    await this.#tail;
    await this.#uploader?.finish();
  }

  /** Stops the uploader without uploading more (the spool keeps what it holds). */
  stop(): void {
    this.#uploader?.stop();
  }

  #acknowledged(spoolDurable: bigint): bigint {
    if (this.#options.ack !== 'remote') return spoolDurable;
    return this.#uploader?.confirmedLsn(spoolDurable) ?? 0n;
  }

  /** How many segments a write of [start, end) completes. */
  #completions(startLsn: bigint, endLsn: bigint): number {
    if (this.#segmentSize === 0) return 0;
    const size = BigInt(this.#segmentSize);
    return Number(endLsn / size - startLsn / size);
  }

  /** Tells the uploader which segment gets WAL before the spool sink writes it. */
  #handOver(timeline: number, startLsn: bigint, endLsn: bigint): void {
    const uploader = this.#requireUploader();
    uploader.opened(timeline, startLsn / BigInt(this.#segmentSize));
    uploader.wrote(endLsn);
  }

  /** After the spool sink wrote [start, end): the segments it completed, and the one it then opened. */
  #accountCompleted(timeline: number, startLsn: bigint, endLsn: bigint): void {
    const uploader = this.#requireUploader();
    const size = BigInt(this.#segmentSize);
    for (let segment = startLsn / size; (segment + 1n) * size <= endLsn; segment++) {
      uploader.completed(timeline, segment);
      if ((segment + 1n) * size < endLsn) uploader.opened(timeline, segment + 1n);
    }
  }

  /**
   * Runs `call` after every earlier call was handed to the spool sink, and after `gate` (room in
   * the spool) when given; without either waiting, at once (the spool sink orders its own calls).
   */
  #inOrder<T>(gate: (() => Promise<void>) | undefined, call: () => Promise<T>): Promise<T> {
    try {
      this.#throwIfFailed();
    } catch (error) {
      return Promise.reject(error);
    }
    if (gate === undefined && this.#queued === 0) return call();
    this.#queued++;
    // The count drops in the same callback that hands the call over, so no later call can pass it.
    const result = this.#tail.then(gate).then(
      () => {
        this.#queued--;
        this.#throwIfFailed();
        return call();
      },
      (error: unknown) => {
        this.#queued--;
        throw error;
      },
    );
    this.#tail = result.catch(() => {});
    return result;
  }

  #throwIfFailed(): void {
    const failure = this.#uploader?.failure;
    if (failure !== undefined) throw failure;
  }

  #requireUploader(): Uploader {
    if (this.#uploader === undefined) {
      throw new S3SinkError(
        'WAL_ERR_SINK_S3_INVALID_OPTION',
        'the S3 sink was used before prepare(): call prepare() with the server facts first',
      );
    }
    return this.#uploader;
  }
}

function checkOptions(options: S3SinkOptions): void {
  const invalid = (message: string) => new S3SinkError('WAL_ERR_SINK_S3_INVALID_OPTION', message);
  if (options.store === undefined || typeof options.store.put !== 'function')
    throw invalid('store is required: an object store opened for the archive URL');
  if (typeof options.spool !== 'string' || options.spool === '')
    throw invalid('spool is required: the local directory WAL is written to before it is uploaded');
  if (options.ack !== undefined && options.ack !== 'local' && options.ack !== 'remote')
    throw invalid(`invalid ack "${String(options.ack)}": expected "local" or "remote"`);
  const interval = options.partialUploadIntervalMs;
  if (interval !== undefined && !(Number.isFinite(interval) && interval >= 0))
    throw invalid(`partialUploadIntervalMs must be a number of milliseconds >= 0, got ${interval}`);
  const bound = options.maxQueuedFiles;
  if (bound !== undefined && !(Number.isSafeInteger(bound) && bound >= 1))
    throw invalid(`maxQueuedFiles must be a whole number >= 1, got ${bound}`);
  const concurrency = options.uploadConcurrency;
  if (concurrency !== undefined && !(Number.isSafeInteger(concurrency) && concurrency >= 1))
    throw invalid(`uploadConcurrency must be a whole number >= 1, got ${concurrency}`);
}
