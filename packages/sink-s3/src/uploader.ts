import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { historyFileName, segmentStartLsn, walFileName } from '@wal/protocol';
import { errorFacts, S3SinkError, uploadError } from './errors.js';
import { compareUploadOrder, listSpool, type SpoolFile, sizeOf, startLsnOf } from './spool-files.js';
import type { UploadStore } from './store.js';
import { StoreIndex } from './store-index.js';

export interface UploaderOptions {
  store: UploadStore;
  spool: string;
  segmentSize: number;
  /** The suffix of the spool's segment names ('', '.gz', '.lz4', '.zst'). */
  compressionSuffix: string;
  partialUploadIntervalMs: number;
  maxQueuedFiles: number;
  /** At most this many spool files are uploaded at once (complete segments; others go alone). */
  uploadConcurrency: number;
  /** Makes everything written to the spool durable; the end LSN (the spool sink's flush). */
  flushSpool: () => Promise<bigint>;
  /** First and longest wait before trying a failed upload again (after the store's own retries). */
  retryDelayMs: { first: number; max: number };
  onUploadRetry: ((error: unknown, retryInMs: number) => void) | undefined;
  signal: AbortSignal | undefined;
}

interface Segment {
  readonly timeline: number;
  readonly segmentNumber: bigint;
}

interface RoomWaiter {
  readonly completions: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Moves files from the spool to the store in order (ADR 0011): history files before the segments
 * of their timeline, segments by number (up to `uploadConcurrency` at once), each removed from the
 * spool once the store confirmed it; and the open segment's `.partial` when its oldest unconfirmed
 * byte is `partialUploadIntervalMs` old. It owns what is queued, what the store has confirmed, and the
 * store's index; the sink tells it what it writes (`opened`, `wrote`, `completed`, `historyWritten`).
 */
export class Uploader {
  readonly #options: UploaderOptions;
  #index: StoreIndex | undefined;
  readonly #indexWaiters: { resolve: (index: StoreIndex) => void; reject: (error: unknown) => void }[] = [];
  /** Spool files waiting for the store, in upload order, including those being uploaded. */
  #pending: SpoolFile[] = [];
  /** The files of `#pending` being uploaded now. */
  readonly #inFlight = new Set<SpoolFile>();
  /** Aborts the uploads in flight when one of them fails the uploader. */
  readonly #abort = new AbortController();
  /** Monotonic ms before which no upload starts: a failed one waits to be tried again. */
  #backoffUntil = 0;
  readonly #sizes = new Map<string, number>();
  /** `.partial` files a previous run left in the spool, until the stream opens its first segment. */
  #leftoverPartials: SpoolFile[] = [];
  #staleObjects: string[] = [];
  /** The segment the sink writes into, or last wrote into (its `.partial` stays in the spool). */
  #open: Segment | undefined;
  /** The segment before `#open`, whose completion the sink has not reported yet. */
  #completing: bigint | undefined;
  #writtenEnd = 0n;
  /** The highest confirmed LSN reported: never reported lower afterwards. */
  #confirmedHigh = 0n;
  #partialConfirmedEnd: bigint | undefined;
  /** Monotonic ms when the oldest byte of the open segment not in the store was handed to the spool. */
  #dirtySince: number | undefined;
  readonly #roomWaiters = new Set<RoomWaiter>();
  #failure: unknown;
  #stopped = false;
  #finishing: { resolve: () => void; reject: (error: unknown) => void } | undefined;
  #wakeUp: (() => void) | undefined;
  #retryDelayMs: number;

  constructor(options: UploaderOptions) {
    this.#options = options;
    this.#retryDelayMs = options.retryDelayMs.first;
    options.signal?.addEventListener('abort', () => this.#abortWaits(), { once: true });
  }

  /** Reads what the spool holds for the store and starts uploading. */
  async start(): Promise<void> {
    const files = await listSpool(this.#options.spool, this.#options.segmentSize);
    this.#leftoverPartials = files.filter((file) => file.kind === 'partial');
    for (const file of files) if (file.kind !== 'partial') this.#enqueue(file);
    void this.#run();
  }

  /** The store's index, once listed (the first listing is retried like an upload). */
  index(): Promise<StoreIndex> {
    if (this.#index !== undefined) return Promise.resolve(this.#index);
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#stopped) return Promise.reject(stoppedError());
    return new Promise((resolve, reject) => {
      this.#indexWaiters.push({ resolve, reject });
      if (this.#options.signal?.aborted) this.#abortWaits();
    });
  }

  get failure(): unknown {
    return this.#failure;
  }

  /** The sink hands WAL of `segment` to the spool (called before the write). */
  opened(timeline: number, segmentNumber: bigint): void {
    const open = this.#open;
    if (open?.timeline === timeline && open.segmentNumber === segmentNumber) return;
    if (this.#open === undefined && this.#leftoverPartials.length > 0)
      this.#adoptLeftovers(timeline, segmentNumber);
    if (open !== undefined) {
      // The next segment of the same timeline is written only once this one is full: it completes.
      if (open.timeline === timeline && open.segmentNumber + 1n === segmentNumber) {
        this.#completing = segmentStartLsn(open.segmentNumber, this.#options.segmentSize);
      } else {
        this.#enqueue({ name: this.#partialName(open), kind: 'partial', ...open });
      }
    }
    this.#open = { timeline, segmentNumber };
    this.#partialConfirmedEnd = undefined;
    this.#dirtySince = undefined;
    // Opened after its predecessor completed in the same write: that write's bytes past the
    // boundary are already in it, and no later `wrote` may come to start the interval.
    const start = segmentStartLsn(segmentNumber, this.#options.segmentSize);
    if (open === undefined && this.#writtenEnd > start) {
      this.#dirtySince = performance.now();
      this.#wake();
    }
  }

  /** WAL up to `endLsn` handed to the spool. */
  wrote(endLsn: bigint): void {
    if (endLsn <= this.#writtenEnd) return;
    this.#writtenEnd = endLsn;
    if (this.#dirtySince === undefined) {
      this.#dirtySince = performance.now();
      this.#wake();
    }
  }

  /** The spool sink completed (fsync, rename) a segment. */
  completed(timeline: number, segmentNumber: bigint): void {
    const name =
      walFileName(timeline, segmentNumber, this.#options.segmentSize) + this.#options.compressionSuffix;
    this.#enqueue({ name, kind: 'segment', timeline, segmentNumber });
    const open = this.#open;
    if (open?.timeline === timeline && open.segmentNumber === segmentNumber) {
      this.#open = undefined;
      this.#dirtySince = undefined;
      this.#partialConfirmedEnd = undefined;
    } else {
      this.#completing = undefined;
    }
  }

  historyWritten(timeline: number): void {
    this.#enqueue({ name: historyFileName(timeline), kind: 'history', timeline, segmentNumber: -1n });
  }

  /** Resolves once the spool holds few enough files that `completions` more stay within the bound. */
  waitForRoom(completions: number): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    // Nothing would upload the segments this write completes, nor make room for it.
    if (this.#stopped) return Promise.reject(stoppedError());
    if (this.#hasRoom(completions)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#roomWaiters.add({ completions, resolve, reject });
      if (this.#options.signal?.aborted) this.#abortWaits();
    });
  }

  /**
   * The end of the WAL the store holds without a gap (ADR 0011, "Acknowledgement"): never past
   * `spoolDurable`, nor past the start of a file still waiting, nor past the open segment's start
   * plus what its last confirmed `.partial` held.
   */
  confirmedLsn(spoolDurable: bigint): bigint {
    let floor = spoolDurable;
    const lower = (lsn: bigint): void => {
      if (lsn < floor) floor = lsn;
    };
    const openStart =
      this.#open === undefined
        ? undefined
        : segmentStartLsn(this.#open.segmentNumber, this.#options.segmentSize);
    for (const file of this.#pending) {
      if (file.kind !== 'history') lower(startLsnOf(file, this.#options.segmentSize));
      else if (openStart !== undefined) lower(openStart);
    }
    if (this.#completing !== undefined) lower(this.#completing);
    if (openStart !== undefined) lower(this.#partialConfirmedEnd ?? openStart);
    // What the store confirmed stays confirmed: a segment whose `.partial` is in the store goes
    // back to waiting when it completes, but the store still holds what its `.partial` held.
    if (floor > this.#confirmedHigh) this.#confirmedHigh = floor;
    return this.#confirmedHigh;
  }

  status(spoolDurable: bigint): { queuedFiles: number; queuedBytes: number; confirmedLsn: bigint } {
    let queuedBytes = 0;
    for (const file of this.#pending) queuedBytes += this.#sizes.get(file.name) ?? 0;
    return { queuedFiles: this.#pending.length, queuedBytes, confirmedLsn: this.confirmedLsn(spoolDurable) };
  }

  /**
   * Uploads what is waiting and the open segment's `.partial` (if the store lacks some of it), then
   * stops. A failure, even one the loop would retry, rejects: the spool keeps the file.
   */
  finish(): Promise<void> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#finishing = { resolve, reject };
      this.#wake();
    });
  }

  /** Stops uploading (what runs completes); waits for room or the index reject. */
  stop(): void {
    this.#stopped = true;
    this.#rejectWaiters(stoppedError());
    this.#wake();
  }

  /**
   * The listing, stale deletions and the open segment's `.partial` run here one at a time; spool
   * files are started from here and run beside it (`#launchUploads`).
   */
  async #run(): Promise<void> {
    while (!this.#stopped) {
      this.#launchUploads();
      const task = this.#nextTask();
      if (task === undefined) {
        if (this.#finishing !== undefined && this.#pending.length === 0) return this.#finished();
        await this.#sleep(this.#sleepMs());
        continue;
      }
      try {
        await task();
        this.#retryDelayMs = this.#options.retryDelayMs.first;
      } catch (error) {
        if (this.#stopped) return;
        if (!this.#mayRetry(error)) return this.#fail(error);
        this.#backOff(error);
      }
    }
  }

  #nextTask(): (() => Promise<void>) | undefined {
    if (performance.now() < this.#backoffUntil) return undefined;
    if (this.#index === undefined) return () => this.#loadIndex();
    const stale = this.#staleObjects[0];
    if (stale !== undefined) return () => this.#deleteStale(stale);
    if (this.#pending.length === 0 && this.#partialDueInMs() === 0) return () => this.#uploadPartial();
    return undefined;
  }

  /** Until the retry delay ends, the `.partial` is due, or (undefined) an upload ends or a file comes. */
  #sleepMs(): number | undefined {
    const backoff = this.#backoffUntil - performance.now();
    if (backoff > 0) return backoff;
    return this.#pending.length === 0 ? this.#partialDueInMs() : undefined;
  }

  /**
   * Starts what may go now, in upload order: complete segments side by side up to the concurrency;
   * a history file or a `.partial` only alone and first, and nothing after it until it is stored
   * (a history file before the segments of its timeline, an old timeline's `.partial` before the
   * new timeline). A later segment may be confirmed first: the confirmed position still stops at
   * the start of the first file waiting.
   */
  #launchUploads(): void {
    if (this.#index === undefined || this.#staleObjects.length > 0) return;
    if (performance.now() < this.#backoffUntil) return;
    for (const file of this.#pending) {
      if (this.#inFlight.size >= this.#options.uploadConcurrency) return;
      if (file.kind !== 'segment') {
        if (this.#inFlight.size === 0 && file === this.#pending[0]) this.#launch(file);
        return;
      }
      if (!this.#inFlight.has(file)) this.#launch(file);
    }
  }

  #launch(file: SpoolFile): void {
    this.#inFlight.add(file);
    this.#upload(file).then(
      () => {
        this.#inFlight.delete(file);
        this.#retryDelayMs = this.#options.retryDelayMs.first;
        this.#wake();
      },
      (error: unknown) => {
        this.#inFlight.delete(file);
        if (this.#stopped) return;
        if (!this.#mayRetry(error)) return this.#fail(error);
        this.#backOff(error);
        this.#wake();
      },
    );
  }

  #mayRetry(error: unknown): boolean {
    return errorFacts(error).retryable && this.#finishing === undefined;
  }

  /** A retryable failure: no upload starts for a while (doubling); the wait in ms. */
  #backOff(error: unknown): number {
    const now = performance.now();
    // Uploads that fail together (the store is down) wait once, not once each.
    if (now >= this.#backoffUntil) {
      const delay = this.#retryDelayMs;
      this.#retryDelayMs = Math.min(this.#retryDelayMs * 2, this.#options.retryDelayMs.max);
      this.#backoffUntil = now + delay;
    }
    const wait = Math.max(0, Math.ceil(this.#backoffUntil - now));
    this.#options.onUploadRetry?.(error, wait);
    return wait;
  }

  async #loadIndex(): Promise<void> {
    const { store, segmentSize } = this.#options;
    let index: StoreIndex;
    try {
      index = await StoreIndex.load(store, segmentSize);
    } catch (error) {
      throw uploadError(error, 'listing the objects', store.url);
    }
    this.#index = index;
    this.#staleObjects = index.stalePartials();
    for (const waiter of this.#indexWaiters.splice(0)) waiter.resolve(index);
  }

  async #deleteStale(name: string): Promise<void> {
    await this.#delete(name);
    this.#staleObjects.shift();
  }

  async #delete(name: string): Promise<void> {
    try {
      await this.#options.store.delete(name);
    } catch (error) {
      throw uploadError(error, `deleting "${name}"`, this.#options.store.url);
    }
    this.#index?.deleted(name);
  }

  /** One spool file to the store, then out of the spool (ADR 0011, "Upload order"). */
  async #upload(file: SpoolFile): Promise<void> {
    const { store, spool } = this.#options;
    const index = this.#index!;
    const completeName = file.kind === 'partial' ? file.name.slice(0, -'.partial'.length) : undefined;
    // A left-behind `.partial` whose segment the store already has complete is not needed.
    if (completeName === undefined || !index.has(completeName)) {
      try {
        await this.#store(file, join(spool, file.name));
      } catch (error) {
        throw uploadError(error, `uploading "${file.name}"`, store.url);
      }
    }
    // Only once the complete segment is in the store (not when its spool file went missing).
    if (file.kind === 'segment' && index.has(file.name)) {
      for (const name of index.partialsOf(file.timeline, file.segmentNumber)) await this.#delete(name);
    }
    await unlink(join(spool, file.name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    this.#pending.splice(this.#pending.indexOf(file), 1);
    this.#sizes.delete(file.name);
    this.#releaseRoom();
  }

  /**
   * One spool file into the store, unless it holds it already (same size and MD5). A complete
   * segment or a history file never changes: it is never overwritten (If-None-Match). Streamed
   * from the file where the store can, so a segment is never held in memory whole.
   */
  async #store(file: SpoolFile, path: string): Promise<void> {
    const { store } = this.#options;
    const index = this.#index!;
    const size = await sizeOf(this.#options.spool, file.name);
    if (size === undefined) return; // gone: nothing to store
    const known = index.get(file.name);
    if (known !== undefined && known.size === size && etagMatches(known.etag, await md5OfFile(path))) return;
    const signal = this.#abort.signal;
    if (file.kind !== 'partial' && store.putFile !== undefined) {
      await store.putFile(file.name, path, { ifNoneMatch: true, signal });
      index.stored(file.name, size);
      return;
    }
    const body = await this.#readSpoolFile(file.name);
    if (body === undefined) return;
    await store.put(file.name, body, { ifNoneMatch: file.kind !== 'partial', signal });
    index.stored(file.name, body.length);
  }

  async #readSpoolFile(name: string): Promise<Buffer | undefined> {
    try {
      return await readFile(join(this.#options.spool, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** The open segment's `.partial`, as far as the spool has it durable. */
  async #uploadPartial(): Promise<void> {
    const open = this.#open;
    if (open === undefined) return;
    const flushedAt = performance.now();
    const end = await this.#options.flushSpool();
    const { segmentSize, store } = this.#options;
    const start = segmentStartLsn(open.segmentNumber, segmentSize);
    const stillOpen = () => this.#open === open;
    if (!stillOpen() || end <= start || end >= start + BigInt(segmentSize)) return this.#partialDone(open);
    const name = this.#partialName(open);
    const body = await this.#readSpoolFile(name);
    if (body === undefined) return this.#partialDone(open);
    try {
      await store.put(name, body);
    } catch (error) {
      throw uploadError(error, `uploading "${name}"`, store.url);
    }
    this.#index?.stored(name, body.length);
    if (!stillOpen()) return;
    this.#partialConfirmedEnd = end;
    this.#dirtySince = this.#writtenEnd > end ? flushedAt : undefined;
  }

  /** Nothing to upload for this segment's `.partial` now: the next new WAL starts the interval again. */
  #partialDone(open: Segment): void {
    if (this.#open === open) this.#dirtySince = undefined;
  }

  #partialDueInMs(): number | undefined {
    if (this.#open === undefined || this.#dirtySince === undefined) return undefined;
    if (this.#finishing !== undefined) return 0;
    const interval = this.#options.partialUploadIntervalMs;
    if (interval <= 0) return undefined;
    return Math.max(0, this.#dirtySince + interval - performance.now());
  }

  #partialName(segment: Segment): string {
    const name = walFileName(segment.timeline, segment.segmentNumber, this.#options.segmentSize);
    return `${name}${this.#options.compressionSuffix}.partial`;
  }

  /** The stream's first segment: every other `.partial` a previous run left is done with. */
  #adoptLeftovers(timeline: number, segmentNumber: bigint): void {
    const current = this.#partialName({ timeline, segmentNumber });
    for (const file of this.#leftoverPartials) if (file.name !== current) this.#enqueue(file);
    this.#leftoverPartials = [];
  }

  #enqueue(file: SpoolFile): void {
    if (this.#pending.some((queued) => queued.name === file.name)) return;
    let at = this.#pending.length;
    // A new file never goes before one being uploaded.
    while (
      at > 0 &&
      !this.#inFlight.has(this.#pending[at - 1]!) &&
      compareUploadOrder(file, this.#pending[at - 1]!) < 0
    )
      at--;
    this.#pending.splice(at, 0, file);
    void sizeOf(this.#options.spool, file.name).then((size) => {
      if (size !== undefined && this.#pending.includes(file)) this.#sizes.set(file.name, size);
    });
    this.#wake();
  }

  #hasRoom(completions: number): boolean {
    // An empty queue takes any write: one completing more segments than the bound would never fit.
    return this.#pending.length === 0 || this.#pending.length + completions <= this.#options.maxQueuedFiles;
  }

  #releaseRoom(): void {
    for (const waiter of this.#roomWaiters) {
      if (!this.#hasRoom(waiter.completions)) continue;
      this.#roomWaiters.delete(waiter);
      waiter.resolve();
    }
  }

  #finished(): void {
    const finishing = this.#finishing!;
    this.#finishing = undefined;
    this.stop();
    finishing.resolve();
  }

  /** The first fatal failure ends the run: the uploads still in flight are aborted, not reported. */
  #fail(error: unknown): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    this.#stopped = true;
    this.#abort.abort(error);
    this.#wake();
    this.#rejectWaiters(error);
    const finishing = this.#finishing;
    this.#finishing = undefined;
    finishing?.reject(error);
  }

  #rejectWaiters(error: unknown): void {
    for (const waiter of this.#roomWaiters) waiter.reject(error);
    this.#roomWaiters.clear();
    for (const waiter of this.#indexWaiters.splice(0)) waiter.reject(error);
  }

  #abortWaits(): void {
    const error = new S3SinkError(
      'WAL_ERR_SINK_S3_ABORTED',
      `stopped while waiting for ${this.#options.store.url}: the spool keeps what it holds`,
    );
    for (const waiter of this.#roomWaiters) waiter.reject(error);
    this.#roomWaiters.clear();
    for (const waiter of this.#indexWaiters.splice(0)) waiter.reject(error);
  }

  #wake(): void {
    const wakeUp = this.#wakeUp;
    this.#wakeUp = undefined;
    wakeUp?.();
  }

  /** Sleeps until woken (new work, finish, stop) or `ms` passed. */
  #sleep(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      this.#wakeUp = done;
      function done(): void {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      }
    });
  }
}

function stoppedError(): S3SinkError {
  return new S3SinkError('WAL_ERR_SINK_S3_STOPPED', 'the S3 sink was stopped: it takes no more WAL');
}

/** An MD5 entity tag (a single-part upload's) equal to `md5Hex`. */
function etagMatches(etag: string | undefined, md5Hex: string | undefined): boolean {
  if (etag === undefined || md5Hex === undefined) return false;
  const plain = etag.replaceAll('"', '').toLowerCase();
  return /^[0-9a-f]{32}$/.test(plain) && plain === md5Hex;
}

/** The MD5 of a file, read as a stream; undefined when it is gone. */
async function md5OfFile(path: string): Promise<string | undefined> {
  const hash = createHash('md5');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return hash.digest('hex');
}
