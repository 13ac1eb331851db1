import type { EndOfStreamResult, ReplicationStream } from '@wal/libpq-lite';
import {
  decodeReplicationMessage,
  formatLsn,
  segmentOffsetOf,
  writeStandbyStatusUpdateFrame,
} from '@wal/protocol';
import { StreamError } from './errors.js';
import { buildStatusUpdate, ReceiveDeadline, StatusSchedule } from './feedback.js';
import { lengthToKeepBeforeStop, nextSegmentBoundary } from './positions.js';
import type { WalSink } from './sink.js';
import { checkNextTimeline } from './timeline.js';
import type { ReceiveEvent } from './types.js';

/** 'd' + Int32 length + the 34-byte 'r' payload. */
const STATUS_FRAME_LENGTH = 39;
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

/** Shared with the caller, which cleans up after an error. */
export interface CopyState {
  receivedLsn: bigint;
  writtenLsn: bigint;
  /** At least one write of this COPY completed. */
  receivedWal: boolean;
  /**
   * Set when copyStream ends (returns or throws): all sink operations still running; never
   * rejects. The caller awaits it before closing the sink.
   */
  pendingDone: Promise<void> | undefined;
  /** copyStream closed the sink itself. */
  sinkClosed: boolean;
}

interface SinkOperation {
  kind: 'write' | 'flush';
  startLsn: bigint;
  endLsn: bigint;
  /** Bytes of WAL this operation holds (0 for a flush). */
  length: number;
  /**
   * The stream position (ReplicationStream.position) before the message whose data this operation
   * holds; for a flush, the position when it was started. Memory before it is released to the
   * connection once every operation before this one has settled.
   */
  holdsFrom: number;
  /** Never rejects: the outcome is recorded in the fields below. */
  done: Promise<void>;
  settled: boolean;
  failed: boolean;
  error: unknown;
  flushedLsn: bigint;
}

function track(
  kind: SinkOperation['kind'],
  startLsn: bigint,
  endLsn: bigint,
  length: number,
  holdsFrom: number,
  work: Promise<unknown>,
  onSettled: () => void,
): SinkOperation {
  const operation: SinkOperation = {
    kind,
    startLsn,
    endLsn,
    length,
    holdsFrom,
    done: Promise.resolve(),
    settled: false,
    failed: false,
    error: undefined,
    flushedLsn: 0n,
  };
  operation.done = work.then(
    (value) => {
      operation.settled = true;
      if (typeof value === 'bigint') operation.flushedLsn = value;
      onSettled();
    },
    (error: unknown) => {
      operation.settled = true;
      operation.failed = true;
      operation.error = error;
      onSettled();
    },
  );
  return operation;
}

/** The sooner of two optional delays. */
function earliest(first: number | undefined, second: number | undefined): number | undefined {
  if (first === undefined) return second;
  return second === undefined || first <= second ? first : second;
}

/**
 * One COPY BOTH session on one timeline: pg_receivewal's HandleCopyStream, ProcessWALDataMsg,
 * ProcessKeepaliveMsg and HandleEndOfCopyStream (src/bin/pg_basebackup/receivelog.c) as an async
 * generator. It yields events and returns how the COPY ended; errors are thrown, and the caller
 * closes the sink and the connection. `state` is updated as WAL is written so that the caller
 * knows the position after an error.
 *
 * Pipelining and backpressure: each WAL message goes to `sink.write` as soon as it is read, so
 * several writes may be in flight while the socket keeps being read (the sink runs them in order:
 * DirectorySink serialises its calls). They are accounted for strictly in the order they were
 * started: `writtenLsn`, 'segment-finished' and 'progress' advance only over a prefix of completed
 * writes, and the first failure met in that order is thrown (nothing after it counts as written).
 * Reading stops while `maxBytesInFlight` bytes or more are unwritten, so memory stays bounded, the
 * connection's buffer fills, it pauses the socket and TCP flow control reaches the walsender.
 * Below the bound every buffered message is read, so a keepalive asking for a reply is answered
 * at once; periodic status updates go out on their timer either way, which keeps the walsender
 * from timing us out while the disk is slow. At most one flush runs at a time; it is queued behind
 * the writes started before it. A message that starts a segment is written only once every
 * operation before it has succeeded, so a failed write never leaves a later segment behind a hole.
 * A sink that can write on this thread (WalSink.writeAtOnce and flushAtOnce: DirectorySink with
 * blocking writes) is called that way whenever none of its calls is running: the write is
 * accounted for in the same turn, without a promise, and in synchronous mode everything already
 * buffered is written, then one flush and one status update follow, as in pg_receivewal's loop.
 *
 * Waiting: messages already buffered are read synchronously (no promise per message). Only when
 * there is nothing to do does the loop wait, on one promise that the first of these resolves: the
 * connection has a message (one `waitForMessage` stays outstanding across iterations), a sink
 * operation settles, a timer fires, `signal` aborts (one listener per copyStream).
 */
export async function* copyStream(
  stream: ReplicationStream,
  options: CopyStreamOptions,
  state: CopyState,
): AsyncGenerator<ReceiveEvent, CopyOutcome, undefined> {
  const { sink, segmentSize, timeline, startLsn, endLsn, reportFlush, synchronous, signal, clock } = options;
  const segmentBytes = BigInt(segmentSize);
  const schedule = new StatusSchedule(options.statusIntervalMs);
  const deadline = new ReceiveDeadline(options.receiveTimeoutMs, clock.monotonic());

  let receivedLsn = startLsn;
  let writtenLsn = startLsn;
  let flushedLsn = 0n;
  let serverWalEnd = 0n;
  let lastProgressAt = Number.NEGATIVE_INFINITY;
  const maxBytesInFlight = options.maxBytesInFlight ?? DEFAULT_MAX_BYTES_IN_FLIGHT;
  if (!isValidBytesInFlight(maxBytesInFlight)) {
    throw new StreamError(
      'WAL_ERR_STREAM_INVALID_OPTION',
      `maxBytesInFlight must be a positive whole number of bytes, got ${maxBytesInFlight}`,
    );
  }
  /** Sink operations in the order they were started; those before `firstOperation` are accounted for. */
  const operations: SinkOperation[] = [];
  let firstOperation = 0;
  /** WAL bytes handed to the sink whose write is not accounted for yet. */
  let bytesInFlight = 0;
  let flushInFlight = false;
  /** A WAL message starting a segment, waiting until every operation before it has succeeded. */
  let held: { startLsn: bigint; data: Buffer; holdsFrom: number } | undefined;
  /** What was last passed to stream.release(). */
  let releasedPosition = stream.position;
  // From the first call on, the connection keeps what it read for reuse (SocketReader): make it
  // the first thing, or the megabytes read while the first segment is opened are never reused.
  stream.release(releasedPosition);
  let stopReason: 'endpos' | 'aborted' | undefined;
  let flushWanted = false;
  let serverCopyDone = false;
  let endResult: EndOfStreamResult | undefined;
  let copyDoneSent = false;

  const durableLsn = (): bigint => (sink.durableLsn > flushedLsn ? sink.durableLsn : flushedLsn);
  const sendStatus = (now: number, replyRequested = false): void => {
    const status = buildStatusUpdate(
      reportFlush,
      { receivedLsn, durableLsn: durableLsn(), streamStartLsn: startLsn },
      clock.wall(),
      replyRequested,
    );
    // A fresh buffer per status: the connection may queue the frame without copying it, and
    // statuses are rare (one per interval or keepalive), so this is not a hot path.
    stream.sendFrame(writeStandbyStatusUpdateFrame(Buffer.allocUnsafe(STATUS_FRAME_LENGTH), status));
    schedule.markSent(now);
  };

  /**
   * Whether to read the connection: not while a segment start waits, nor while the sink is
   * `maxBytesInFlight` behind, nor once we stop. pg_receivewal reads on after endpos and ignores
   * the WAL; we read nothing more until the writes before the stop are done (then stopStreaming
   * reads to the end of COPY): the WAL would be dropped anyway, and memory read into while those
   * writes hold the buffers before it could not be reused, so a walsender still sending at full
   * speed would have us read tens of MiB into new memory.
   */
  const reading = (): boolean =>
    held === undefined && bytesInFlight < maxBytesInFlight && stopReason === undefined;

  // The one promise of an idle period, and what resolves it.
  let wakeUp: (() => void) | undefined;
  const wake = (): void => {
    const resolve = wakeUp;
    if (resolve === undefined) return;
    wakeUp = undefined;
    resolve();
  };
  let reportedLsn = startLsn;
  const progress = (): ReceiveEvent => {
    reportedLsn = receivedLsn;
    return { type: 'progress', receivedLsn, durableLsn: durableLsn(), serverWalEnd };
  };
  /**
   * Accounts for a write that completed, in the order writes were started; returns the events it
   * calls for, or undefined (most writes: no allocation).
   */
  const wrote = (writeStartLsn: bigint, writeEndLsn: bigint, now: number): ReceiveEvent[] | undefined => {
    writtenLsn = writeEndLsn;
    state.writtenLsn = writtenLsn;
    state.receivedWal = true;
    if (synchronous) flushWanted = true;
    let events: ReceiveEvent[] | undefined;
    for (
      let boundary = nextSegmentBoundary(writeStartLsn, segmentSize);
      boundary <= writeEndLsn;
      boundary += segmentBytes
    ) {
      events ??= [];
      events.push({ type: 'segment-finished', lsn: boundary, timeline });
    }
    if (events !== undefined || now - lastProgressAt >= PROGRESS_INTERVAL_MS) {
      lastProgressAt = now;
      events ??= [];
      events.push(progress());
    }
    return events;
  };
  const flushed = (lsn: bigint, now: number): void => {
    if (lsn > flushedLsn) flushedLsn = lsn;
    // Synchronous mode, or a keepalive asked for a reply while flush positions are reported
    // (the walsender's shutdown waits until flush == sent): report the new flush position now.
    if (!serverCopyDone && endResult === undefined) sendStatus(now);
  };
  /**
   * Hands WAL to the sink. When nothing else of the sink's is running and it can write at once
   * (WalSink.writeAtOnce), the write is accounted for here and its events returned; otherwise it
   * joins the operations in flight (and undefined is returned).
   */
  const startWrite = (
    lsn: bigint,
    data: Buffer,
    holdsFrom: number,
    now: number,
  ): ReceiveEvent[] | undefined => {
    if (firstOperation === operations.length && sink.writeAtOnce?.(timeline, lsn, data) === true) {
      return wrote(lsn, lsn + BigInt(data.length), now);
    }
    operations.push(
      track(
        'write',
        lsn,
        lsn + BigInt(data.length),
        data.length,
        holdsFrom,
        sink.write(timeline, lsn, data),
        wake,
      ),
    );
    bytesInFlight += data.length;
    return undefined;
  };
  // The sink keeps no view of `data` once its write settled (WalSink.write), and nothing else here
  // keeps one past its message: give the connection back the memory before the oldest data still
  // in use, so it reads into the same buffers again instead of new ones.
  const releaseRead = (): void => {
    const position =
      firstOperation < operations.length
        ? (operations[firstOperation] as SinkOperation).holdsFrom
        : (held?.holdsFrom ?? stream.position);
    if (position === releasedPosition) return;
    releasedPosition = position;
    stream.release(position);
  };
  // The outstanding waitForMessage, if any; `waitCancel` ends it when COPY ends or on an error, so
  // that the connection has no waiter left (it allows one at a time).
  const waitCancel = new AbortController();
  let streamWaiting = false;
  let streamWaitDueAt = Number.POSITIVE_INFINITY;
  let streamWaitEnded = false;
  let streamWaitFailure: { error: unknown } | undefined;
  const onStreamWait = (): void => {
    streamWaiting = false;
    streamWaitEnded = true;
    wake();
  };
  const onStreamWaitError = (error: unknown): void => {
    streamWaiting = false;
    // An error after we cancelled the wait concerns nobody.
    if (!waitCancel.signal.aborted) streamWaitFailure = { error };
    wake();
  };
  const releaseStreamWait = (): void => {
    if (!streamWaiting) return;
    streamWaiting = false;
    waitCancel.abort();
  };
  // One timer, re-armed only when a wait must end earlier than it fires.
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerDueAt = Number.POSITIVE_INFINITY;
  let timerFired = false;
  const onTimer = (): void => {
    timer = undefined;
    timerDueAt = Number.POSITIVE_INFINITY;
    timerFired = true;
    wake();
  };
  signal?.addEventListener('abort', wake);

  try {
    for (;;) {
      if (streamWaitFailure !== undefined) throw streamWaitFailure.error;

      // 1. Sink operations finished: account for them in the order they were started, and tell the consumer.
      while (firstOperation < operations.length) {
        const operation = operations[firstOperation] as SinkOperation;
        if (!operation.settled) break;
        firstOperation++;
        if (firstOperation === operations.length) {
          operations.length = 0;
          firstOperation = 0;
        } else if (firstOperation >= 64 && firstOperation * 2 >= operations.length) {
          operations.splice(0, firstOperation);
          firstOperation = 0;
        }
        bytesInFlight -= operation.length;
        if (operation.failed) throw operation.error;
        const now = clock.monotonic();
        if (operation.kind === 'write') {
          const events = wrote(operation.startLsn, operation.endLsn, now);
          if (events !== undefined) for (const event of events) yield event;
        } else {
          flushInFlight = false;
          flushed(operation.flushedLsn, now);
        }
      }

      // 2. A held message (the start of a segment) once everything before it is written, then a
      // flush when one is wanted (one at a time; the sink runs it after the writes before it).
      if (held !== undefined && firstOperation === operations.length) {
        const { startLsn: heldStartLsn, data, holdsFrom } = held;
        held = undefined;
        const events = startWrite(heldStartLsn, data, holdsFrom, clock.monotonic());
        if (events !== undefined) for (const event of events) yield event;
      }
      if (flushWanted && !flushInFlight && stopReason === undefined) {
        flushWanted = false;
        // Like pg_receivewal: everything already received is written, then one fsync and status.
        const durableAtOnce = firstOperation === operations.length ? sink.flushAtOnce?.() : undefined;
        if (durableAtOnce !== undefined) {
          flushed(durableAtOnce, clock.monotonic());
        } else {
          flushInFlight = true;
          operations.push(track('flush', writtenLsn, writtenLsn, 0, stream.position, sink.flush(), wake));
        }
      }
      releaseRead();

      // 3. The end: the server ended COPY, or we stop (endpos or abort) once all WAL is written.
      if (stopReason === undefined && signal?.aborted) stopReason = 'aborted';
      const serverEnded = serverCopyDone || endResult !== undefined;
      if (firstOperation === operations.length) {
        if (serverEnded) break;
        if (stopReason !== undefined) {
          releaseStreamWait();
          yield* stopStreaming();
          return { kind: 'stopped', reason: stopReason, lsn: receivedLsn };
        }
      }

      // 4. Timers: periodic status and the receive timeout.
      const now = clock.monotonic();
      if (!serverEnded) {
        if (schedule.isDue(now)) sendStatus(now);
        // Not reading because the sink is behind (or we stop) is not silence of the server.
        if (!reading()) deadline.received(now);
        const verdict = deadline.check(now);
        if (verdict === 'timeout') {
          throw new StreamError(
            'WAL_ERR_STREAM_RECEIVE_TIMEOUT',
            `no message from the server for ${options.receiveTimeoutMs} ms, even after asking for a reply; reconnecting.`,
            { retryable: true },
          );
        }
        if (verdict === 'ping') {
          sendStatus(now, true);
          deadline.pinged();
        }
      }

      // 5. Everything already buffered, synchronously: no promise per message.
      let received = false;
      while (reading() && !serverCopyDone && endResult === undefined) {
        const holdsFrom = stream.position;
        const event = stream.readMessage();
        if (event === undefined) break;
        received = true;
        if (event.type === 'copy-done') {
          serverCopyDone = true;
        } else if (event.type === 'end') {
          endResult = event.result;
        } else {
          const message = decodeReplicationMessage(event.data);
          if (message.type === 'XLogData') {
            if (message.walEnd < message.dataStart) {
              // walEnd is the walsender's send-request pointer, never behind what it sends (walsender.c
              // XLogSendPhysical); pg_receivewal ignores it, but a message breaking that is corrupt.
              throw new StreamError(
                'WAL_ERR_STREAM_INVALID_WAL_END',
                `got WAL data at ${formatLsn(message.dataStart)} whose server WAL end ${formatLsn(message.walEnd)} lies before it (timeline ${timeline}); the message is corrupt, reconnecting.`,
                { retryable: true },
              );
            }
            serverWalEnd = message.walEnd;
            if (message.dataStart !== receivedLsn) {
              // Stricter than pg_receivewal, which compares only the offset in the segment (spec §10 item 4).
              throw new StreamError(
                'WAL_ERR_STREAM_UNEXPECTED_POSITION',
                `got WAL data at ${formatLsn(message.dataStart)}, expected ${formatLsn(receivedLsn)} (timeline ${timeline}); reconnecting to resume from the stored position.`,
                { retryable: true },
              );
            }
            const keep = lengthToKeepBeforeStop(message.dataStart, message.data.length, endLsn, segmentSize);
            const data = keep === message.data.length ? message.data : message.data.subarray(0, keep);
            receivedLsn = message.dataStart + BigInt(keep);
            state.receivedLsn = receivedLsn;
            // pg_receivewal stops once it has received WAL strictly past endpos (`endpos < blockpos`).
            if (endLsn !== undefined && endLsn < receivedLsn) stopReason = 'endpos';
            if (keep === 0) continue;
            // A write starting a segment waits for the writes before it: were one of them to fail,
            // the sink could still open and fill the next segment behind a hole (DirectorySink
            // refuses a write that does not continue the open segment, except at a segment start).
            if (firstOperation < operations.length && segmentOffsetOf(message.dataStart, segmentSize) === 0) {
              held = { startLsn: message.dataStart, data, holdsFrom };
            } else {
              const events = startWrite(message.dataStart, data, holdsFrom, now);
              if (events !== undefined) for (const event of events) yield event;
            }
          } else if (message.type === 'PrimaryKeepalive') {
            if (message.walEnd > serverWalEnd) serverWalEnd = message.walEnd;
            if (message.replyRequested) {
              // pg_receivewal fsyncs before replying when it reports flush; we reply at once (the sink
              // may be busy) and again once a flush has made the received WAL durable.
              if (reportFlush && durableLsn() < receivedLsn) flushWanted = true;
              sendStatus(now);
            }
          }
          // A primary status update ('s', PG19) only answers a 'p' request, which we never send.
        }
      }
      if (received) {
        deadline.received(clock.monotonic());
        continue;
      }
      if (firstOperation < operations.length && (operations[firstOperation] as SinkOperation).settled)
        continue;
      if (streamWaitEnded || timerFired) {
        streamWaitEnded = false;
        timerFired = false;
        continue;
      }

      // 6. Caught up and idle: report the position the throttle held back (once the throttle allows:
      // a synchronous standby is idle after every commit, and an event per commit going up through
      // every generator costs more CPU than the commit's write and fsync), then wait until a
      // message arrives, a sink operation settles, a timer fires or we are aborted.
      const sinkIdle = firstOperation === operations.length;
      let progressDueInMs: number | undefined;
      if (sinkIdle && !serverEnded && reportedLsn !== receivedLsn && writtenLsn === receivedLsn) {
        progressDueInMs = lastProgressAt + PROGRESS_INTERVAL_MS - now;
        if (progressDueInMs <= 0) {
          lastProgressAt = now;
          yield progress();
          continue;
        }
      }
      const timeoutMs = earliest(
        serverEnded ? undefined : earliest(schedule.sleepMs(now), deadline.sleepMs(now)),
        progressDueInMs,
      );
      const dueAt = timeoutMs === undefined ? Number.POSITIVE_INFINITY : now + timeoutMs;
      if (!serverEnded && reading() && !streamWaiting) {
        streamWaiting = true;
        streamWaitDueAt = dueAt;
        stream.waitForMessage(timeoutMs, waitCancel.signal).then(onStreamWait, onStreamWaitError);
      }
      const waitEndsInTime = streamWaiting && streamWaitDueAt <= dueAt;
      if (timeoutMs !== undefined && !waitEndsInTime && dueAt < timerDueAt) {
        if (timer !== undefined) clearTimeout(timer);
        timer = setTimeout(onTimer, Math.max(0, timeoutMs));
        timerDueAt = dueAt;
      }
      if (stopReason === undefined && signal?.aborted) continue;
      await new Promise<void>((resolve) => {
        wakeUp = resolve;
      });
    }

    // The server ended COPY (HandleEndOfCopyStream): close the segment, answer its CopyDone, read the
    // result. All WAL received before is written (the loop above ends only without pending work).
    releaseStreamWait();
    state.sinkClosed = true;
    await sink.close();
    if (serverCopyDone && !copyDoneSent) {
      stream.sendCopyDone();
      copyDoneSent = true;
    }
    while (endResult === undefined) {
      const event = stream.readMessage();
      stream.release(stream.position);
      if (event === undefined) {
        if (!(await stream.waitForMessage())) {
          throw new StreamError(
            'WAL_ERR_STREAM_TERMINATED',
            `the replication stream ended without the result of START_REPLICATION (at ${formatLsn(receivedLsn)} on timeline ${timeline})`,
            { retryable: true },
          );
        }
      } else if (event.type === 'end') {
        endResult = event.result;
      }
    }
    if (stopReason === undefined && signal?.aborted) stopReason = 'aborted';
    const next = endResult.nextTimeline;
    if (next !== undefined && stopReason === undefined) {
      checkNextTimeline({ timeline, stopLsn: receivedLsn }, next);
      return { kind: 'end-of-timeline', stopLsn: receivedLsn, next };
    }
    if (stopReason !== undefined) return { kind: 'stopped', reason: stopReason, lsn: receivedLsn };
    throw new StreamError(
      'WAL_ERR_STREAM_TERMINATED',
      `replication stream was terminated before stop point (at ${formatLsn(receivedLsn)} on timeline ${timeline}${
        endResult.serverClosed ? ', the server closed the connection: shutting down?' : ''
      })`,
      { retryable: true },
    );
  } finally {
    signal?.removeEventListener('abort', wake);
    if (timer !== undefined) clearTimeout(timer);
    releaseStreamWait();
    // Everything still running, for the caller's cleanup after an error (it closes the sink after).
    const running: Promise<void>[] = [];
    for (let index = firstOperation; index < operations.length; index++) {
      const operation = operations[index] as SinkOperation;
      if (!operation.settled) running.push(operation.done);
    }
    state.pendingDone = running.length === 0 ? undefined : Promise.all(running).then(() => undefined);
  }

  /**
   * Our stop (endpos or abort), once all received WAL is written. The order matters:
   * 1. sink.flush(): everything written becomes durable;
   * 2. a last status update, so a slot advances to what is durable (flush only with a slot or
   *    synchronous, as always) — a status after our CopyDone would not be valid protocol;
   * 3. CopyDone, then read until the server ends COPY (ignoring its WAL and keepalives, like
   *    pg_receivewal's still_sending = false), at most STOP_WAIT_MS, or receiveTimeoutMs when that
   *    is shorter (the caller's own limit on a silent server);
   * 4. sink.close(): the open segment stays `.partial`, durably. The caller closes the connection.
   */
  async function* stopStreaming(): AsyncGenerator<ReceiveEvent, void, undefined> {
    const flushed = await sink.flush();
    if (flushed > flushedLsn) flushedLsn = flushed;
    sendStatus(clock.monotonic());
    stream.sendCopyDone();
    copyDoneSent = true;
    const waitMs = Math.min(STOP_WAIT_MS, options.receiveTimeoutMs ?? STOP_WAIT_MS);
    const giveUpAt = clock.monotonic() + waitMs;
    try {
      while (endResult === undefined) {
        const event = stream.readMessage();
        // Nothing read now is kept: the WAL the server still sends is dropped (a walsender that
        // has not seen our CopyDone yet may send megabytes), so its memory is read into again.
        stream.release(stream.position);
        if (event === undefined) {
          const remaining = giveUpAt - clock.monotonic();
          if (remaining <= 0 || !(await stream.waitForMessage(remaining))) break;
        } else if (event.type === 'end') {
          endResult = event.result;
        }
      }
    } catch {
      // The connection failing after our CopyDone changes nothing: all WAL is written and flushed.
    }
    state.sinkClosed = true;
    await sink.close();
    yield progress();
  }
}
