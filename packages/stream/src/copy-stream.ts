import type { EndOfStreamResult, ReplicationStream } from '@wal/libpq-lite';
import { decodeReplicationMessage, formatLsn, writeStandbyStatusUpdateFrame } from '@wal/protocol';
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
  /** The running sink operation; never rejects. The caller awaits it before closing the sink. */
  pendingDone: Promise<void> | undefined;
  /** copyStream closed the sink itself. */
  sinkClosed: boolean;
}

interface SinkOperation {
  kind: 'write' | 'flush';
  startLsn: bigint;
  endLsn: bigint;
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
  work: Promise<unknown>,
): SinkOperation {
  const operation: SinkOperation = {
    kind,
    startLsn,
    endLsn,
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
    },
    (error: unknown) => {
      operation.settled = true;
      operation.failed = true;
      operation.error = error;
    },
  );
  return operation;
}

/** Resolves after `ms` (never when undefined) or when `signal` aborts, whichever comes first. */
function sleep(ms: number | undefined, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = ms === undefined ? undefined : setTimeout(finish, ms);
    signal.addEventListener('abort', finish, { once: true });
    function finish(): void {
      if (timer !== undefined) clearTimeout(timer);
      signal.removeEventListener('abort', finish);
      resolve();
    }
  });
}

/**
 * One COPY BOTH session on one timeline: pg_receivewal's HandleCopyStream, ProcessWALDataMsg,
 * ProcessKeepaliveMsg and HandleEndOfCopyStream (src/bin/pg_basebackup/receivelog.c) as an async
 * generator. It yields events and returns how the COPY ended; errors are thrown, and the caller
 * closes the sink and the connection. `state` is updated as WAL is written so that the caller
 * knows the position after an error.
 *
 * Backpressure: at most one sink operation (write or flush) runs at a time, and at most one WAL
 * message waits for it (`held`). While one waits, nothing more is read, so the connection's buffer
 * fills, it pauses the socket and TCP flow control reaches the walsender. While the sink is busy
 * and no WAL message waits, buffered messages are still read, so a keepalive asking for a reply is
 * answered at once; periodic status updates go out on their timer either way, which keeps the
 * walsender from timing us out while the disk is slow.
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
  let pending: SinkOperation | undefined;
  let held: { startLsn: bigint; data: Buffer } | undefined;
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
  const startWrite = (lsn: bigint, data: Buffer): void => {
    pending = track('write', lsn, lsn + BigInt(data.length), sink.write(timeline, lsn, data));
    state.pendingDone = pending.done;
  };
  let reportedLsn = startLsn;
  const progress = (): ReceiveEvent => {
    reportedLsn = receivedLsn;
    return { type: 'progress', receivedLsn, durableLsn: durableLsn(), serverWalEnd };
  };

  for (;;) {
    // 1. A sink operation finished: account for it and tell the consumer.
    if (pending?.settled) {
      const operation: SinkOperation = pending;
      pending = undefined;
      if (operation.failed) throw operation.error;
      const now = clock.monotonic();
      if (operation.kind === 'write') {
        writtenLsn = operation.endLsn;
        state.writtenLsn = writtenLsn;
        state.receivedWal = true;
        if (synchronous) flushWanted = true;
        let segmentFinished = false;
        for (
          let boundary = nextSegmentBoundary(operation.startLsn, segmentSize);
          boundary <= operation.endLsn;
          boundary += segmentBytes
        ) {
          segmentFinished = true;
          yield { type: 'segment-finished', lsn: boundary, timeline };
        }
        if (segmentFinished || now - lastProgressAt >= PROGRESS_INTERVAL_MS) {
          lastProgressAt = now;
          yield progress();
        }
      } else {
        if (operation.flushedLsn > flushedLsn) flushedLsn = operation.flushedLsn;
        // Synchronous mode, or a keepalive asked for a reply while flush positions are reported
        // (the walsender's shutdown waits until flush == sent): report the new flush position now.
        if (!serverCopyDone && endResult === undefined) sendStatus(now);
      }
    }

    // 2. Keep the sink busy: the waiting WAL message first, then a flush if one is wanted.
    if (pending === undefined && held !== undefined) {
      startWrite(held.startLsn, held.data);
      held = undefined;
    }
    if (pending === undefined && flushWanted && stopReason === undefined) {
      flushWanted = false;
      pending = track('flush', writtenLsn, writtenLsn, sink.flush());
      state.pendingDone = pending.done;
    }

    // 3. The end: the server ended COPY, or we stop (endpos or abort) once all WAL is written.
    if (stopReason === undefined && signal?.aborted) stopReason = 'aborted';
    const serverEnded = serverCopyDone || endResult !== undefined;
    if (pending === undefined && held === undefined) {
      if (serverEnded) break;
      if (stopReason !== undefined) {
        yield* stopStreaming();
        return { kind: 'stopped', reason: stopReason, lsn: receivedLsn };
      }
    }

    // 4. Timers: periodic status and the receive timeout.
    const now = clock.monotonic();
    if (!serverEnded) {
      if (schedule.isDue(now)) sendStatus(now);
      // Not reading because the sink is behind is not silence of the server.
      if (held !== undefined) deadline.received(now);
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
    while (held === undefined && !serverCopyDone && endResult === undefined) {
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
          // pg_receivewal ignores WAL once it is stopping.
          if (stopReason !== undefined) continue;
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
          if (pending === undefined) startWrite(message.dataStart, data);
          else held = { startLsn: message.dataStart, data };
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
    if (pending?.settled) continue;

    // 6. Caught up and idle: report the position the throttle held back, then wait until a message
    // arrives, the sink finishes, a timer fires or we are aborted.
    if (pending === undefined && !serverEnded && reportedLsn !== receivedLsn && writtenLsn === receivedLsn) {
      lastProgressAt = now;
      yield progress();
      continue;
    }
    const readable = held === undefined && !serverCopyDone && endResult === undefined;
    let timeoutMs = serverEnded ? undefined : schedule.sleepMs(now);
    const untilDeadline = serverEnded ? undefined : deadline.sleepMs(now);
    if (untilDeadline !== undefined && (timeoutMs === undefined || untilDeadline < timeoutMs)) {
      timeoutMs = untilDeadline;
    }
    await waitForActivity(
      stream,
      readable,
      pending,
      timeoutMs,
      stopReason === undefined ? signal : undefined,
    );
  }

  // The server ended COPY (HandleEndOfCopyStream): close the segment, answer its CopyDone, read the
  // result. All WAL received before is written (the loop above ends only without pending work).
  state.sinkClosed = true;
  await sink.close();
  if (serverCopyDone && !copyDoneSent) {
    stream.sendCopyDone();
    copyDoneSent = true;
  }
  while (endResult === undefined) {
    const event = stream.readMessage();
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

/**
 * Waits until a message is buffered (only when `readable`), `pending` settles, `timeoutMs` passes
 * or `signal` aborts. One promise per wait, never per message: waits happen only when nothing is
 * buffered.
 */
async function waitForActivity(
  stream: ReplicationStream,
  readable: boolean,
  pending: SinkOperation | undefined,
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const wake = new AbortController();
  const combined = signal === undefined ? wake.signal : AbortSignal.any([signal, wake.signal]);
  void pending?.done.then(() => wake.abort());
  try {
    if (readable) await stream.waitForMessage(timeoutMs, combined);
    else await sleep(timeoutMs, combined);
  } catch (error) {
    if (!combined.aborted) throw error;
  } finally {
    wake.abort();
  }
}
