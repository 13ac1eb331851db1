import type { StandbyStatusUpdate } from '@wal/protocol';
import { toPostgresTimestamp } from '@wal/protocol';

/**
 * When to send a standby status update ('r'), following pg_receivewal's HandleCopyStream
 * (src/bin/pg_basebackup/receivelog.c): the interval is measured from the last status sent, the
 * first status goes out immediately after CopyBothResponse (its `last_status` starts at -1), and
 * the sleep between checks is never shorter than one second (CalculateCopyStreamSleeptime).
 * Times are milliseconds of a monotonic clock.
 */
export class StatusSchedule {
  readonly statusIntervalMs: number;
  #lastStatusAt = Number.NEGATIVE_INFINITY;

  constructor(statusIntervalMs: number) {
    this.statusIntervalMs = statusIntervalMs;
  }

  /** A periodic status is due: interval > 0 and at least one interval since the last status (any kind). */
  isDue(now: number): boolean {
    return this.statusIntervalMs > 0 && now - this.#lastStatusAt >= this.statusIntervalMs;
  }

  /** When the last status (any kind) went out; -Infinity before the first. */
  get lastStatusAt(): number {
    return this.#lastStatusAt;
  }

  /** Every status sent (periodic, keepalive reply, synchronous) restarts the interval, as in pg_receivewal. */
  markSent(now: number): void {
    this.#lastStatusAt = now;
  }

  /**
   * How long to wait for messages before checking again; undefined = no status timer (interval 0).
   * pg_receivewal targets `last_status + (interval - 1 ms)` and sleeps at least one whole second when
   * less than a second remains, so with `-s 10` statuses may go out after 10 or 11 s: kept on purpose.
   */
  sleepMs(now: number): number | undefined {
    if (this.statusIntervalMs <= 0) return undefined;
    const remaining = this.#lastStatusAt + (this.statusIntervalMs - 1) - now;
    if (!(remaining >= 1000)) return 1000;
    return Math.floor(remaining);
  }
}

/** How often a status goes out while the sink holds the stream (see SinkHoldFeedback). */
export const SINK_HOLD_STATUS_INTERVAL_MS = 1000;

/**
 * Statuses while the sink holds the stream. When the sink falls behind, the loop stops reading
 * (TCP backpressure), so the keepalives in which the walsender asks for a reply stay unread in the
 * socket, and the walsender hears only what we send unasked. Its `wal_sender_timeout` (default
 * 60 s, often set lower) ends the connection when that is less than the status interval, or when
 * statuses are off (`-s 0`): a sink that waits long (an object store that is down, docs/adr/0011)
 * would lose the connection. pg_receivewal, whose disk writes block only briefly, has no such
 * case. So once the sink has held reading for SINK_HOLD_STATUS_INTERVAL_MS, a status goes out at
 * that interval; short holds while streaming normally change nothing on the wire.
 */
export class SinkHoldFeedback {
  #heldSince: number | undefined;

  /** Whether the sink holds reading now. */
  update(held: boolean, now: number): void {
    if (!held) this.#heldSince = undefined;
    else this.#heldSince ??= now;
  }

  isDue(now: number, lastStatusAt: number): boolean {
    return this.sleepMs(now, lastStatusAt) === 0;
  }

  /** Milliseconds until the next such status; undefined while the sink does not hold reading. */
  sleepMs(now: number, lastStatusAt: number): number | undefined {
    if (this.#heldSince === undefined) return undefined;
    const due = Math.max(this.#heldSince, lastStatusAt) + SINK_HOLD_STATUS_INTERVAL_MS;
    return Math.max(0, Math.ceil(due - now));
  }
}

/**
 * Optional receive timeout, taken from the walreceiver (walreceiver.c WalRcvComputeNextWakeup):
 * after half the timeout without any message from the server, ask it for a reply once (a status
 * with replyRequested = 1); after the whole timeout, give up. Any received message resets both.
 */
export class ReceiveDeadline {
  readonly timeoutMs: number | undefined;
  #lastReceiveAt: number;
  #pinged = false;

  constructor(timeoutMs: number | undefined, now: number) {
    this.timeoutMs = timeoutMs;
    this.#lastReceiveAt = now;
  }

  received(now: number): void {
    this.#lastReceiveAt = now;
    this.#pinged = false;
  }

  /** 'ping' is returned once per silence; the caller sends the ping and calls pinged(). */
  check(now: number): 'ok' | 'ping' | 'timeout' {
    if (this.timeoutMs === undefined) return 'ok';
    const silence = now - this.#lastReceiveAt;
    if (silence >= this.timeoutMs) return 'timeout';
    if (!this.#pinged && silence >= this.timeoutMs / 2) return 'ping';
    return 'ok';
  }

  pinged(): void {
    this.#pinged = true;
  }

  /** Milliseconds until the next deadline (ping or timeout), undefined without a timeout. */
  sleepMs(now: number): number | undefined {
    if (this.timeoutMs === undefined) return undefined;
    const next = this.#lastReceiveAt + (this.#pinged ? this.timeoutMs : this.timeoutMs / 2);
    return Math.max(0, Math.ceil(next - now));
  }
}

/** The facts a status update is built from. */
export interface FeedbackPositions {
  /** End of the WAL received and handed to the sink (pg_receivewal's blockpos after write()). */
  receivedLsn: bigint;
  /** What the sink reports durable (max of sink.durableLsn and the last sink.flush() result). */
  durableLsn: bigint;
  /** Where this START_REPLICATION began (a segment start). */
  streamStartLsn: bigint;
}

/**
 * The flush position to report. Only with a slot or in synchronous mode (pg_receivewal's
 * reportFlushPosition, receivelog.c:467-488): reporting a flush position makes the walsender move
 * the slot's restart_lsn and lets the server count us as a synchronous standby, so without either
 * it stays 0. It is never ahead of what the sink has made durable, and never ahead of what was
 * received. While nothing of this stream is known durable (durable < start) it is 0, which the
 * server reads as "no information" and leaves the slot alone; pg_receivewal reports the start
 * position there even when it holds none of the WAL before it (deliberate deviation).
 */
export function reportedFlushLsn(reportFlush: boolean, positions: FeedbackPositions): bigint {
  if (!reportFlush) return 0n;
  const { receivedLsn, durableLsn, streamStartLsn } = positions;
  if (durableLsn < streamStartLsn) return 0n;
  // biome-ignore lint/complexity/useMathMinMax: bigints; Math.min does not take them.
  return durableLsn < receivedLsn ? durableLsn : receivedLsn;
}

/**
 * The content of a standby status update as pg_receivewal's sendFeedback fills it: write = what
 * was received and handed to the sink, flush per reportedFlushLsn, apply = 0 always (an archiver applies nothing, and must
 * never count as a remote_apply standby), replyRequested = 0 except for the receive-timeout ping.
 */
export function buildStatusUpdate(
  reportFlush: boolean,
  positions: FeedbackPositions,
  unixMs: number,
  replyRequested = false,
): StandbyStatusUpdate {
  return {
    writeLsn: positions.receivedLsn,
    flushLsn: reportedFlushLsn(reportFlush, positions),
    applyLsn: 0n,
    sendTime: toPostgresTimestamp(unixMs),
    replyRequested,
  };
}
