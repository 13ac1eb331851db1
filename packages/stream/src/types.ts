import type { WalError } from '@wal/protocol';
import type { ReplicationConnection } from './connection.js';
import type { WalSink } from './sink.js';

export interface ReceiveWalOptions {
  /**
   * Opens a replication connection (`replication=true`), for example
   * `(signal) => connect({ ...parameters, replication: 'true' }, { signal })` with
   * @wal/libpq-lite. Called again for every reconnect. A failure of the first call is fatal, like
   * pg_receivewal. `signal` aborts when `signal` below does or `receiveTimeoutMs` passes: the
   * attempt should then give up (the loop stops waiting for it either way, and destroys a
   * connection that arrives later).
   */
  connect: (signal: AbortSignal) => Promise<ReplicationConnection>;
  sink: WalSink;
  /** Physical replication slot: START_REPLICATION SLOT, start from its restart_lsn, report flush positions. */
  slot?: string;
  /** Stop once WAL strictly past this position has been received (pg_receivewal --endpos). */
  endLsn?: bigint;
  /** Interval of standby status updates; 0 = only when the server asks. Default 10000 (pg_receivewal -s 10). */
  statusIntervalMs?: number;
  /** Flush the sink after every write and report it at once, so the server may use us as a synchronous standby. */
  synchronous?: boolean;
  /** Do not reconnect: the first streaming failure is thrown (pg_receivewal --no-loop). */
  noLoop?: boolean;
  /**
   * Give up on a connection when the server has sent nothing for this long (a ping is sent at
   * half while streaming); it also bounds each connection attempt and each command. Default: none.
   */
  receiveTimeoutMs?: number;
  /** First delay before reconnecting; doubles per consecutive failure up to 60 s. Default 5000. */
  reconnectDelayMs?: number;
  /**
   * Stop reading from the server while this many bytes of WAL or more are handed to the sink and
   * not written yet (several writes run in flight up to it). Default 4 MiB.
   */
  maxBytesInFlight?: number;
  /** Stops streaming gracefully: CopyDone, flush, close the sink (the open segment stays `.partial`). */
  signal?: AbortSignal;
}

/**
 * What the loop reports, in order. Per connection: `connected`, then `streaming-started` once
 * (where streaming begins, a segment start: pg_receivewal's StreamLog line, also when `endLsn`
 * lies before it), then per timeline `segment-finished`/`progress` and `timeline-switched` (the
 * next timeline's first write starts at the segment start of its `lsn`). A stop decided while
 * COPY runs is `stopping` (then the sink is flushed and closed and COPY ended), and the last event
 * is `stopped`; a stop before START_REPLICATION is `stopped` alone.
 */
export type ReceiveEvent =
  | { type: 'connected'; systemId: bigint; timeline: number; serverVersion: number; segmentSize: number }
  | { type: 'streaming-started'; lsn: bigint; timeline: number }
  | { type: 'segment-finished'; lsn: bigint; timeline: number }
  | { type: 'timeline-switched'; timeline: number; lsn: bigint }
  | { type: 'progress'; receivedLsn: bigint; durableLsn: bigint; serverWalEnd: bigint }
  | { type: 'disconnected'; error: WalError; retryInMs: number }
  | { type: 'stopping'; reason: 'endpos' | 'aborted'; lsn: bigint; timeline: number }
  | { type: 'stopped'; reason: 'endpos' | 'aborted'; lsn: bigint; timeline: number };
