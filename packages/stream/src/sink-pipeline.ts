import type { ReadLease, ReplicationStream } from '@wal/libpq-lite';
import type { SinkCloseReason, WalSink } from './sink.js';

/** What a finished sink operation did, as the copy loop accounts for it. */
export type SettledOperation =
  | {
      readonly kind: 'write';
      readonly startLsn: bigint;
      readonly endLsn: bigint;
      readonly failed: boolean;
      readonly error: unknown;
    }
  | {
      readonly kind: 'flush';
      readonly durableLsn: bigint;
      readonly failed: boolean;
      readonly error: unknown;
    };

interface Operation {
  kind: 'write' | 'flush';
  startLsn: bigint;
  endLsn: bigint;
  /** Bytes of WAL this operation holds (0 for a flush). */
  length: number;
  /** The lease on the message whose data a write holds. */
  lease: ReadLease | undefined;
  /** Never rejects: the outcome is recorded in the fields below. */
  done: Promise<void>;
  settled: boolean;
  failed: boolean;
  error: unknown;
  durableLsn: bigint;
}

/** A WAL message starting a segment, waiting until every operation before it has succeeded. */
interface HeldWrite {
  timeline: number;
  startLsn: bigint;
  data: Buffer;
  lease: ReadLease;
}

/**
 * The sink calls of one COPY in flight, in the order they were started (walmethods.c's calls, but
 * several at a time). Each WAL message goes to `sink.write` as soon as it is read, and the message
 * stays leased from the connection until its write has settled and been accounted for; then the
 * connection may read into its memory again (docs/adr/0001-buffer-ownership.md).
 *
 * - Order: operations are accounted for strictly in the order they were started
 *   (`nextSettled`), so a write that finishes early counts only once those before it have; the
 *   first failure met in that order ends the COPY.
 * - Bound: the loop stops reading (`accepting` false) while `maxBytesInFlight` bytes or more are
 *   unwritten, so memory stays bounded and TCP flow control reaches the walsender.
 * - Barrier: a write that starts a segment waits (`held`) until every operation before it has
 *   succeeded, so a failed write never leaves a later segment behind a hole.
 * - At once: a sink that writes on this thread (WalSink.writeAtOnce, flushAtOnce) is called that
 *   way whenever none of its calls is running: no promise per message.
 * - Close: the sink is closed here and only here (`close`), once, after every running call.
 */
export class SinkPipeline {
  readonly #sink: WalSink;
  readonly #stream: Pick<ReplicationStream, 'retain' | 'release'>;
  readonly #maxBytesInFlight: number;
  readonly #onSettled: () => void;
  /** Operations in the order they were started; those before `#first` are accounted for. */
  #operations: Operation[] = [];
  #first = 0;
  /** WAL bytes handed to the sink whose write is not accounted for yet. */
  #bytesInFlight = 0;
  #flushRunning = false;
  #held: HeldWrite | undefined;
  #closed: Promise<void> | undefined;

  /** `onSettled` is called whenever an operation settles (the copy loop's waker). */
  constructor(
    sink: WalSink,
    stream: Pick<ReplicationStream, 'retain' | 'release'>,
    maxBytesInFlight: number,
    onSettled: () => void,
  ) {
    this.#sink = sink;
    this.#stream = stream;
    this.#maxBytesInFlight = maxBytesInFlight;
    this.#onSettled = onSettled;
  }

  /** Nothing is running or waiting to be accounted for. */
  get idle(): boolean {
    return this.#first === this.#operations.length;
  }

  /** Whether the loop may read more WAL: no segment start waits, and the bound is not reached. */
  get accepting(): boolean {
    return this.#held === undefined && this.#bytesInFlight < this.#maxBytesInFlight;
  }

  get flushRunning(): boolean {
    return this.#flushRunning;
  }

  /** The oldest operation has settled and waits to be accounted for (`nextSettled`). */
  get settledWaiting(): boolean {
    return this.#operations[this.#first]?.settled === true;
  }

  /**
   * Hands the WAL of the message just read to the sink. Returns true when the sink wrote it at
   * once (the caller accounts for it now); false when the write runs, or waits behind the running
   * ones because it starts a segment. Call it before reading the next message: a write that
   * keeps `data` takes a lease on that message.
   */
  write(timeline: number, startLsn: bigint, data: Buffer, startsSegment: boolean): boolean {
    if (startsSegment && !this.idle) {
      this.#held = { timeline, startLsn, data, lease: this.#stream.retain() };
      return false;
    }
    return this.#start(timeline, startLsn, data, undefined);
  }

  /** Starts the held segment start once everything before it is accounted for; its range when written at once. */
  startHeld(): { startLsn: bigint; endLsn: bigint } | undefined {
    const held = this.#held;
    if (held === undefined || !this.idle) return undefined;
    this.#held = undefined;
    if (!this.#start(held.timeline, held.startLsn, held.data, held.lease)) return undefined;
    return { startLsn: held.startLsn, endLsn: held.startLsn + BigInt(held.data.length) };
  }

  #start(timeline: number, startLsn: bigint, data: Buffer, lease: ReadLease | undefined): boolean {
    if (this.idle && this.#sink.writeAtOnce?.(timeline, startLsn, data) === true) {
      if (lease !== undefined) this.#stream.release(lease);
      return true;
    }
    const endLsn = startLsn + BigInt(data.length);
    const work = this.#sink.write(timeline, startLsn, data);
    this.#track('write', startLsn, endLsn, data.length, lease ?? this.#stream.retain(), work);
    this.#bytesInFlight += data.length;
    return false;
  }

  /**
   * Makes everything written before durable: the durable end LSN when the sink did it at once,
   * undefined when the flush runs (accounted for in order, like a write). One at a time.
   */
  flush(writtenLsn: bigint): bigint | undefined {
    if (this.idle) {
      const durableLsn = this.#sink.flushAtOnce?.();
      if (durableLsn !== undefined) return durableLsn;
    }
    this.#flushRunning = true;
    this.#track('flush', writtenLsn, writtenLsn, 0, undefined, this.#sink.flush());
    return undefined;
  }

  #track(
    kind: Operation['kind'],
    startLsn: bigint,
    endLsn: bigint,
    length: number,
    lease: ReadLease | undefined,
    work: Promise<unknown>,
  ): void {
    const operation: Operation = {
      kind,
      startLsn,
      endLsn,
      length,
      lease,
      done: Promise.resolve(),
      settled: false,
      failed: false,
      error: undefined,
      durableLsn: 0n,
    };
    operation.done = work.then(
      (value) => {
        operation.settled = true;
        if (typeof value === 'bigint') operation.durableLsn = value;
        this.#onSettled();
      },
      (error: unknown) => {
        operation.settled = true;
        operation.failed = true;
        operation.error = error;
        this.#onSettled();
      },
    );
    this.#operations.push(operation);
  }

  /**
   * The oldest operation, once it has settled, now accounted for: its message is released to the
   * connection. A failed one is returned too (with `failed`); nothing after it may count.
   */
  nextSettled(): SettledOperation | undefined {
    const operation = this.#operations[this.#first];
    if (operation === undefined || !operation.settled) return undefined;
    this.#first++;
    if (this.#first === this.#operations.length) {
      this.#operations.length = 0;
      this.#first = 0;
    } else if (this.#first >= 64 && this.#first * 2 >= this.#operations.length) {
      this.#operations.splice(0, this.#first);
      this.#first = 0;
    }
    this.#bytesInFlight -= operation.length;
    if (operation.kind === 'flush') this.#flushRunning = false;
    if (operation.lease !== undefined) this.#stream.release(operation.lease);
    return operation;
  }

  /** Settles once every operation started so far has; undefined when none runs. Never rejects. */
  running(): Promise<void> | undefined {
    const running: Promise<void>[] = [];
    for (let index = this.#first; index < this.#operations.length; index++) {
      const operation = this.#operations[index] as Operation;
      if (!operation.settled) running.push(operation.done);
    }
    return running.length === 0 ? undefined : Promise.all(running).then(() => undefined);
  }

  /**
   * Closes the sink (the open segment is renamed when complete, kept `.partial` otherwise), after
   * every running call has settled: never under a running write. Later calls get the first one's
   * result (and its `reason`).
   */
  close(reason: SinkCloseReason): Promise<void> {
    this.#closed ??= (async () => {
      await this.running();
      await this.#sink.close(reason);
    })();
    return this.#closed;
  }
}
