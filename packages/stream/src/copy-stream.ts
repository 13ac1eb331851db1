import type { EndOfStreamResult, ReplicationStream } from '@wal/libpq-lite';
import {
  decodeReplicationMessage,
  formatLsn,
  type PrimaryKeepalive,
  STANDBY_STATUS_UPDATE_FRAME_LENGTH,
  segmentOffsetOf,
  writeStandbyStatusUpdateFrame,
  type XLogData,
} from '@wal/protocol';
import { StreamError } from './errors.js';
import { buildStatusUpdate, ReceiveDeadline, SinkHoldFeedback, StatusSchedule } from './feedback.js';
import { lengthToKeepBeforeStop, nextSegmentBoundary } from './positions.js';
import type { SinkCloseReason, WalSink } from './sink.js';
import { SinkPipeline } from './sink-pipeline.js';
import { checkNextTimeline } from './timeline.js';
import type { ReceiveEvent } from './types.js';
import { Waker } from './waker.js';

/** At most one 'progress' event per this many milliseconds (besides one per finished segment). */
export const PROGRESS_INTERVAL_MS = 500;
/** How long to wait for the server to end COPY after our CopyDone when stopping. */
export const STOP_WAIT_MS = 10_000;
/**
 * Default bound on WAL handed to the sink and not written yet. Enough to keep reading the socket
 * while the sink writes (a 128 kB XLogData message each), small next to a 16 MiB segment.
 */
export const DEFAULT_MAX_BYTES_IN_FLIGHT = 4 * 1024 * 1024;

/** A bound on bytes in flight must be a positive safe integer. */
export function isValidBytesInFlight(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

export interface Clock {
  /** Monotonic milliseconds, for intervals and deadlines. */
  monotonic(): number;
  /** Unix milliseconds, for the sendTime of status updates. */
  wall(): number;
}

export const systemClock: Clock = { monotonic: () => performance.now(), wall: () => Date.now() };

export interface CopyStreamOptions {
  sink: WalSink;
  segmentSize: number;
  timeline: number;
  /** Where START_REPLICATION began: a segment start. */
  startLsn: bigint;
  endLsn: bigint | undefined;
  statusIntervalMs: number;
  /** pg_receivewal's reportFlushPosition: a slot is used, or synchronous mode. */
  reportFlush: boolean;
  synchronous: boolean;
  receiveTimeoutMs: number | undefined;
  signal: AbortSignal | undefined;
  clock: Clock;
  /**
   * Stop reading while this many bytes of WAL or more are handed to the sink and not written yet
   * (default DEFAULT_MAX_BYTES_IN_FLIGHT). A positive integer; one message may exceed it.
   */
  maxBytesInFlight?: number | undefined;
}

export type CopyOutcome =
  | { kind: 'stopped'; reason: 'endpos' | 'aborted'; lsn: bigint }
  | { kind: 'end-of-timeline'; stopLsn: bigint; next: { timeline: number; startLsn: bigint } };

/**
 * One COPY BOTH session on one timeline: pg_receivewal's HandleCopyStream, ProcessXLogDataMsg,
 * ProcessKeepaliveMsg and HandleEndOfCopyStream (src/bin/pg_basebackup/receivelog.c). `run()`
 * yields events and returns how the COPY ended; errors are thrown. `run()` closes the sink itself
 * when COPY ends normally (`close('end')`); after a failure the caller calls `close('failure')`,
 * which closes it once its running calls have settled (the first close counts).
 *
 * The loop reads like HandleCopyStream: account for finished sink calls, check whether to stop,
 * send feedback that is due, read every message already buffered (synchronously: no promise per
 * message) and dispatch it, and only when there is nothing to do, wait (Waker). WAL goes to the
 * sink through a SinkPipeline, which keeps several writes in flight and says when to stop reading.
 */
export class CopyStream {
  readonly #stream: ReplicationStream;
  readonly #options: CopyStreamOptions;
  readonly #pipeline: SinkPipeline;
  readonly #waker: Waker;
  readonly #schedule: StatusSchedule;
  readonly #deadline: ReceiveDeadline;
  readonly #sinkHold = new SinkHoldFeedback();
  /** End of the WAL received (and handed to the sink, or dropped past endpos). */
  receivedLsn: bigint;
  /** End of the WAL the sink has written, accounted for in order. */
  writtenLsn: bigint;
  /** At least one write of this COPY completed. */
  receivedWal = false;
  #flushedLsn = 0n;
  #serverWalEnd = 0n;
  #reportedLsn: bigint;
  #lastProgressAt = Number.NEGATIVE_INFINITY;
  #stopReason: 'endpos' | 'aborted' | undefined;
  #flushWanted = false;
  /**
   * A status update held back while the server does not read what we send: at most one, built
   * when it goes out (the newest positions replace what older ones would have said); true when
   * it must ask for a reply.
   */
  #heldStatus: { replyRequested: boolean } | undefined;
  #serverCopyDone = false;
  #copyDoneSent = false;
  #endResult: EndOfStreamResult | undefined;
  /** Events for the loop to yield: most iterations have none, and then nothing is allocated. */
  #events: ReceiveEvent[] = [];
  /** What ended the COPY, thrown once the events before it are yielded. */
  #failure: { error: unknown } | undefined;

  constructor(stream: ReplicationStream, options: CopyStreamOptions) {
    const maxBytesInFlight = options.maxBytesInFlight ?? DEFAULT_MAX_BYTES_IN_FLIGHT;
    if (!isValidBytesInFlight(maxBytesInFlight)) {
      throw new StreamError(
        'WAL_ERR_STREAM_INVALID_OPTION',
        `maxBytesInFlight must be a positive whole number of bytes, got ${maxBytesInFlight}`,
      );
    }
    this.#stream = stream;
    this.#options = options;
    this.#waker = new Waker(stream, options.signal);
    this.#pipeline = new SinkPipeline(options.sink, stream, maxBytesInFlight, this.#waker.wake);
    this.#schedule = new StatusSchedule(options.statusIntervalMs);
    this.#deadline = new ReceiveDeadline(options.receiveTimeoutMs, options.clock.monotonic());
    this.receivedLsn = options.startLsn;
    this.writtenLsn = options.startLsn;
    this.#reportedLsn = options.startLsn;
  }

  /** Settles once every sink call still running has; undefined when none runs. Never rejects. */
  running(): Promise<void> | undefined {
    return this.#pipeline.running();
  }

  /** Closes the sink after its running calls (once, whoever asks: the first reason counts). */
  close(reason: SinkCloseReason): Promise<void> {
    return this.#pipeline.close(reason);
  }

  async *run(): AsyncGenerator<ReceiveEvent, CopyOutcome, undefined> {
    const { clock, signal } = this.#options;
    try {
      for (;;) {
        this.#waker.throwIfFailed();
        // Nothing read is held but what the sink calls in flight lease. From the first release on,
        // the connection keeps what it read for reuse: so this comes first, or the megabytes read
        // while the first segment is opened are never reused.
        this.#stream.release();
        this.#accountSettled(clock.monotonic());
        this.#startWaitingWork();
        // Events go out before a failure met after them, as they happened.
        if (this.#events.length > 0) for (const event of this.#takeEvents()) yield event;
        this.#throwFailure();

        if (this.#stopReason === undefined && signal?.aborted) this.#stopReason = 'aborted';
        if (this.#pipeline.idle) {
          if (this.#serverEnded) break;
          if (this.#stopReason !== undefined) return yield* this.#stop(this.#stopReason);
        }

        const now = clock.monotonic();
        if (!this.#serverEnded) {
          this.#sendHeldStatus(now);
          this.#sendDueFeedback(now);
        }
        const received = this.#receiveBuffered(now);
        if (this.#events.length > 0) for (const event of this.#takeEvents()) yield event;
        this.#throwFailure();
        if (received) {
          this.#deadline.received(clock.monotonic());
          continue;
        }
        if (this.#pipeline.settledWaiting || this.#waker.takeWakeUp()) continue;
        if (this.#idleProgressDue(now)) {
          yield this.#progress(now);
          continue;
        }
        await this.#wait(now);
      }
      return await this.#endOfCopy();
    } finally {
      this.#waker.dispose();
    }
  }

  get #serverEnded(): boolean {
    return this.#serverCopyDone || this.#endResult !== undefined;
  }

  /**
   * Whether to read the connection: not while the sink pipeline is full or a segment start waits,
   * nor once we stop. pg_receivewal reads on after endpos and ignores the WAL; we read nothing more
   * until the writes before the stop are done (then `#stop` reads to the end of COPY): the WAL
   * would be dropped anyway, and memory read into while those writes hold the buffers before it
   * could not be reused.
   */
  get #reading(): boolean {
    return this.#sinkAllowsReading && !this.#stream.writeBlocked;
  }

  /**
   * The sink pipeline has room and we do not stop. While the server does not read what we send we
   * do not read either (`#reading`): every message read could ask for a reply that can only queue,
   * and not reading lets TCP flow control slow the server down instead.
   */
  get #sinkAllowsReading(): boolean {
    return this.#pipeline.accepting && this.#stopReason === undefined;
  }

  #throwFailure(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
  }

  #takeEvents(): ReceiveEvent[] {
    const events = this.#events;
    this.#events = [];
    return events;
  }

  /** Sink calls that finished, in the order they were started, up to the first failure met. */
  #accountSettled(now: number): void {
    for (let operation = this.#pipeline.nextSettled(); operation !== undefined; ) {
      if (operation.failed) {
        this.#failure = { error: operation.error };
        return;
      }
      if (operation.kind === 'write') this.#wrote(operation.startLsn, operation.endLsn, now);
      else this.#flushed(operation.durableLsn, now);
      operation = this.#pipeline.nextSettled();
    }
  }

  /** A held segment start once everything before it is written, then a flush when one is wanted. */
  #startWaitingWork(): void {
    if (this.#failure !== undefined) return;
    const { clock } = this.#options;
    try {
      const written = this.#pipeline.startHeld();
      if (written !== undefined) this.#wrote(written.startLsn, written.endLsn, clock.monotonic());
      if (this.#flushWanted && !this.#pipeline.flushRunning && this.#stopReason === undefined) {
        this.#flushWanted = false;
        // Like pg_receivewal: everything already received is written, then one fsync and status.
        const durableLsn = this.#pipeline.flush(this.writtenLsn);
        if (durableLsn !== undefined) this.#flushed(durableLsn, clock.monotonic());
      }
    } catch (error) {
      this.#failure = { error };
    }
  }

  /** A write accounted for, in order: its finished segments, and progress when the throttle allows. */
  #wrote(startLsn: bigint, endLsn: bigint, now: number): void {
    this.writtenLsn = endLsn;
    this.receivedWal = true;
    if (this.#options.synchronous) this.#flushWanted = true;
    const { segmentSize, timeline } = this.#options;
    let finished = false;
    for (
      let boundary = nextSegmentBoundary(startLsn, segmentSize);
      boundary <= endLsn;
      boundary += BigInt(segmentSize)
    ) {
      this.#events.push({ type: 'segment-finished', lsn: boundary, timeline });
      finished = true;
    }
    if (finished || now - this.#lastProgressAt >= PROGRESS_INTERVAL_MS)
      this.#events.push(this.#progress(now));
  }

  #flushed(durableLsn: bigint, now: number): void {
    if (durableLsn > this.#flushedLsn) this.#flushedLsn = durableLsn;
    // Synchronous mode, or a keepalive asked for a reply while flush positions are reported
    // (the walsender's shutdown waits until flush == sent): report the new flush position now.
    if (!this.#serverEnded) this.#sendStatus(now);
  }

  #durableLsn(): bigint {
    const sinkDurable = this.#options.sink.durableLsn;
    // biome-ignore lint/complexity/useMathMinMax: bigints; Math.max does not take them.
    return sinkDurable > this.#flushedLsn ? sinkDurable : this.#flushedLsn;
  }

  #progress(now: number): ReceiveEvent {
    this.#lastProgressAt = now;
    this.#reportedLsn = this.receivedLsn;
    return {
      type: 'progress',
      receivedLsn: this.receivedLsn,
      durableLsn: this.#durableLsn(),
      serverWalEnd: this.#serverWalEnd,
    };
  }

  #sendStatus(now: number, replyRequested = false): void {
    if (this.#stream.writeBlocked) {
      // Never queue statuses behind a server that does not read them: one waits, the newest.
      this.#heldStatus = { replyRequested: replyRequested || this.#heldStatus?.replyRequested === true };
      return;
    }
    this.#heldStatus = undefined;
    const { reportFlush, startLsn, clock } = this.#options;
    const positions = {
      receivedLsn: this.receivedLsn,
      durableLsn: this.#durableLsn(),
      streamStartLsn: startLsn,
    };
    const status = buildStatusUpdate(reportFlush, positions, clock.wall(), replyRequested);
    // A fresh buffer per status: the connection may queue the frame without copying it, and
    // statuses are rare (one per interval or keepalive), so this is not a hot path.
    const frame = Buffer.allocUnsafe(STANDBY_STATUS_UPDATE_FRAME_LENGTH);
    this.#stream.sendFrame(writeStandbyStatusUpdateFrame(frame, status));
    this.#schedule.markSent(now);
  }

  /** The status held back while the server did not read, once it reads again. */
  #sendHeldStatus(now: number): void {
    const held = this.#heldStatus;
    if (held !== undefined && !this.#stream.writeBlocked) this.#sendStatus(now, held.replyRequested);
  }

  /** The periodic status, and the receive timeout: a ping at half of it, then give up. */
  #sendDueFeedback(now: number): void {
    this.#sinkHold.update(this.#stopReason === undefined && !this.#pipeline.accepting, now);
    if (this.#schedule.isDue(now) || this.#sinkHold.isDue(now, this.#schedule.lastStatusAt))
      this.#sendStatus(now);
    // Not reading because the sink is behind (or we stop) is not silence of the server; not
    // reading because the server does not read what we send is its own doing, and times out.
    if (!this.#sinkAllowsReading) this.#deadline.received(now);
    const verdict = this.#deadline.check(now);
    if (verdict === 'timeout') {
      throw new StreamError(
        'WAL_ERR_STREAM_RECEIVE_TIMEOUT',
        `no message from the server for ${this.#options.receiveTimeoutMs} ms, even after asking for a reply; reconnecting.`,
        { retryable: true },
      );
    }
    if (verdict === 'ping') {
      this.#sendStatus(now, true);
      this.#deadline.pinged();
    }
  }

  /** Reads and dispatches every message already buffered; true when anything was read. */
  #receiveBuffered(now: number): boolean {
    let received = false;
    try {
      while (this.#reading && !this.#serverEnded) {
        const event = this.#stream.readMessage();
        if (event === undefined) break;
        received = true;
        if (event.type === 'copy-data') this.#dispatch(event.data, now);
        else if (event.type === 'copy-done') this.#serverCopyDone = true;
        else this.#endResult = event.result;
      }
    } catch (error) {
      this.#failure = { error };
    }
    return received;
  }

  #dispatch(data: Buffer, now: number): void {
    const message = decodeReplicationMessage(data);
    if (message.type === 'XLogData') this.#handleXLogData(message, now);
    else if (message.type === 'PrimaryKeepalive') this.#handleKeepalive(message, now);
    // A primary status update ('s', PG19) only answers a 'p' request, which we never send.
  }

  /** ProcessXLogDataMsg: check the position, cut at endpos, hand the WAL to the sink. */
  #handleXLogData(message: XLogData, now: number): void {
    const { timeline, segmentSize, endLsn } = this.#options;
    if (message.walEnd < message.dataStart) {
      // walEnd is the walsender's send-request pointer, never behind what it sends (walsender.c
      // XLogSendPhysical); pg_receivewal ignores it, but a message breaking that is corrupt.
      throw new StreamError(
        'WAL_ERR_STREAM_INVALID_WAL_END',
        `got WAL data at ${formatLsn(message.dataStart)} whose server WAL end ${formatLsn(message.walEnd)} lies before it (timeline ${timeline}); the message is corrupt, reconnecting.`,
        { retryable: true },
      );
    }
    this.#serverWalEnd = message.walEnd;
    if (message.dataStart !== this.receivedLsn) {
      // Stricter than pg_receivewal, which compares only the offset in the segment (spec §10 item 4).
      throw new StreamError(
        'WAL_ERR_STREAM_UNEXPECTED_POSITION',
        `got WAL data at ${formatLsn(message.dataStart)}, expected ${formatLsn(this.receivedLsn)} (timeline ${timeline}); reconnecting to resume from the stored position.`,
        { retryable: true },
      );
    }
    const keep = lengthToKeepBeforeStop(message.dataStart, message.data.length, endLsn, segmentSize);
    this.receivedLsn = message.dataStart + BigInt(keep);
    // pg_receivewal stops once it has received WAL strictly past endpos (`endpos < blockpos`).
    if (endLsn !== undefined && endLsn < this.receivedLsn) this.#stopReason = 'endpos';
    if (keep === 0) return;
    const data = keep === message.data.length ? message.data : message.data.subarray(0, keep);
    const startsSegment = segmentOffsetOf(message.dataStart, segmentSize) === 0;
    if (this.#pipeline.write(timeline, message.dataStart, data, startsSegment)) {
      this.#wrote(message.dataStart, this.receivedLsn, now);
    }
  }

  /** ProcessKeepaliveMsg: note the server's WAL end, and reply at once when asked. */
  #handleKeepalive(message: PrimaryKeepalive, now: number): void {
    if (message.walEnd > this.#serverWalEnd) this.#serverWalEnd = message.walEnd;
    // A server without new WAL sends only keepalives: report them (throttled) while nothing is
    // held back, so a watcher (metrics) sees the stream alive and the server's WAL end.
    if (this.#idleKeepaliveReportDue(now)) this.#events.push(this.#progress(now));
    if (!message.replyRequested) return;
    // pg_receivewal fsyncs before replying when it reports flush; we reply at once (the sink
    // may be busy) and again once a flush has made the received WAL durable.
    if (this.#options.reportFlush && this.#durableLsn() < this.receivedLsn) this.#flushWanted = true;
    this.#sendStatus(now);
  }

  #idleKeepaliveReportDue(now: number): boolean {
    return (
      now - this.#lastProgressAt >= PROGRESS_INTERVAL_MS &&
      this.#pipeline.idle &&
      this.writtenLsn === this.receivedLsn
    );
  }

  /**
   * Caught up and idle: the position the throttle held back is reported once the throttle
   * allows. A synchronous standby is idle after every commit, and an event per commit going up
   * through every generator costs more CPU than the commit's write and fsync.
   */
  #idleProgressDue(now: number): boolean {
    return this.#progressDueInMs(now) === 0;
  }

  /** Milliseconds until the held-back progress may be reported (0: now); undefined when none is held back. */
  #progressDueInMs(now: number): number | undefined {
    if (!this.#pipeline.idle || this.#serverEnded) return undefined;
    if (this.#reportedLsn === this.receivedLsn || this.writtenLsn !== this.receivedLsn) return undefined;
    return Math.max(0, this.#lastProgressAt + PROGRESS_INTERVAL_MS - now);
  }

  /** Waits until a message arrives, a sink call settles, a timer fires or we are aborted. */
  async #wait(now: number): Promise<void> {
    const timers = this.#serverEnded
      ? undefined
      : earliest(
          earliest(this.#schedule.sleepMs(now), this.#deadline.sleepMs(now)),
          this.#sinkHold.sleepMs(now, this.#schedule.lastStatusAt),
        );
    const timeoutMs = earliest(timers, this.#progressDueInMs(now));
    if (this.#stopReason === undefined && this.#options.signal?.aborted) return;
    await this.#waker.wait(now, timeoutMs, !this.#serverEnded && this.#reading);
  }

  /**
   * The server ended COPY (HandleEndOfCopyStream): close the segment, answer its CopyDone, read the
   * result. All WAL received before is written (the loop ends only without pending work).
   */
  async #endOfCopy(): Promise<CopyOutcome> {
    const { timeline, signal } = this.#options;
    this.#waker.stopWatching();
    await this.close('end');
    if (this.#serverCopyDone && !this.#copyDoneSent) this.#sendCopyDone();
    const endResult = await this.#readEndResult();
    if (this.#stopReason === undefined && signal?.aborted) this.#stopReason = 'aborted';
    const next = endResult.nextTimeline;
    if (next !== undefined && this.#stopReason === undefined) {
      checkNextTimeline({ timeline, stopLsn: this.receivedLsn }, next);
      return { kind: 'end-of-timeline', stopLsn: this.receivedLsn, next };
    }
    if (this.#stopReason !== undefined)
      return { kind: 'stopped', reason: this.#stopReason, lsn: this.receivedLsn };
    throw new StreamError(
      'WAL_ERR_STREAM_TERMINATED',
      `replication stream was terminated before stop point (at ${formatLsn(this.receivedLsn)} on timeline ${timeline}${
        endResult.serverClosed ? ', the server closed the connection: shutting down?' : ''
      })`,
      { retryable: true },
    );
  }

  /** After the server's CopyDone: what it sends until its result (WAL it still sent is dropped). */
  async #readEndResult(): Promise<EndOfStreamResult> {
    const { receiveTimeoutMs, signal, clock, timeline } = this.#options;
    while (this.#endResult === undefined) {
      const event = this.#stream.readMessage();
      this.#stream.release();
      if (event === undefined) {
        const waitedAt = clock.monotonic();
        // Bounded like every other wait for the server: a stop request or the receive timeout.
        if (!(await this.#stream.waitForMessage(receiveTimeoutMs, signal))) {
          if (signal?.aborted) {
            throw new StreamError(
              'WAL_ERR_STREAM_ABORTED',
              `stopped while waiting for the result of START_REPLICATION (at ${formatLsn(this.receivedLsn)} on timeline ${timeline})`,
            );
          }
          if (receiveTimeoutMs !== undefined && clock.monotonic() - waitedAt >= receiveTimeoutMs - 1) {
            throw new StreamError(
              'WAL_ERR_STREAM_RECEIVE_TIMEOUT',
              `no answer from the server to our CopyDone within ${receiveTimeoutMs} ms (at ${formatLsn(this.receivedLsn)} on timeline ${timeline}); reconnecting.`,
              { retryable: true },
            );
          }
          throw new StreamError(
            'WAL_ERR_STREAM_TERMINATED',
            `the replication stream ended without the result of START_REPLICATION (at ${formatLsn(this.receivedLsn)} on timeline ${this.#options.timeline})`,
            { retryable: true },
          );
        }
      } else if (event.type === 'end') {
        this.#endResult = event.result;
      }
    }
    return this.#endResult;
  }

  #sendCopyDone(): void {
    this.#stream.sendCopyDone();
    this.#copyDoneSent = true;
  }

  /**
   * Our stop (endpos or abort), once all received WAL is written. The order matters:
   * 1. flush: everything written becomes durable;
   * 2. a last status update, so a slot advances to what is durable (flush only with a slot or
   *    synchronous, as always) — a status after our CopyDone would not be valid protocol;
   * 3. CopyDone, then read until the server ends COPY (ignoring its WAL and keepalives, like
   *    pg_receivewal's still_sending = false), at most STOP_WAIT_MS, or receiveTimeoutMs when that
   *    is shorter (the caller's own limit on a silent server);
   * 4. close the sink: the open segment stays `.partial`, durably. The caller closes the connection.
   */
  async *#stop(reason: 'endpos' | 'aborted'): AsyncGenerator<ReceiveEvent, CopyOutcome, undefined> {
    const { sink, clock, receiveTimeoutMs, timeline } = this.#options;
    // pg_receivewal reports the stop when it decides it (CheckCopyStreamStop), before it closes the
    // segment, and again once the server ended COPY.
    yield { type: 'stopping', reason, lsn: this.receivedLsn, timeline };
    this.#waker.stopWatching();
    const durableLsn = await sink.flush();
    if (durableLsn > this.#flushedLsn) this.#flushedLsn = durableLsn;
    // A server that does not read what we send would see our CopyDone only after everything queued
    // before it: there is no end of COPY to wait for, the caller closes the connection.
    if (!this.#stream.writeBlocked) {
      this.#sendStatus(clock.monotonic());
      this.#sendCopyDone();
      await this.#drainUntilEnd(Math.min(STOP_WAIT_MS, receiveTimeoutMs ?? STOP_WAIT_MS));
    }
    await this.close('end');
    yield this.#progress(clock.monotonic());
    return { kind: 'stopped', reason, lsn: this.receivedLsn };
  }

  /** Reads and drops what the server sends after our CopyDone until it ends COPY, for at most `waitMs`. */
  async #drainUntilEnd(waitMs: number): Promise<void> {
    const { clock } = this.#options;
    const giveUpAt = clock.monotonic() + waitMs;
    try {
      while (this.#endResult === undefined) {
        const event = this.#stream.readMessage();
        // Nothing read now is kept: a walsender that has not seen our CopyDone yet may send
        // megabytes, so its memory is read into again.
        this.#stream.release();
        if (event === undefined) {
          const remaining = giveUpAt - clock.monotonic();
          if (remaining <= 0 || !(await this.#stream.waitForMessage(remaining))) break;
        } else if (event.type === 'end') {
          this.#endResult = event.result;
        }
      }
    } catch {
      // The connection failing after our CopyDone changes nothing: all WAL is written and flushed.
    }
  }
}

/** The sooner of two optional delays. */
function earliest(first: number | undefined, second: number | undefined): number | undefined {
  if (first === undefined) return second;
  return second === undefined || first <= second ? first : second;
}
