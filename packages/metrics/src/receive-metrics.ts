import type { ReceiveEvent } from '@wal/stream';
import type { Registry } from 'prom-client';
import { type ReceiveFamilies, receiveFamiliesOf } from './receive-families.js';
import { newServerState, type ServerState, type UploadStatus } from './server-state.js';

/**
 * Where one server's archiving stands, for `/healthz` and `/readyz` (docs/adr/0013-metrics.md):
 * - `starting`: before streaming began (connecting, IDENTIFY_SYSTEM, the start position);
 * - `streaming`: START_REPLICATION answered and WAL may flow;
 * - `waiting`: the connection failed and a reconnect is scheduled after the backoff;
 * - `failed`: stopped by an error the stream does not retry;
 * - `stopped`: ended as asked (end position reached, stop signal).
 */
export type ReceiveHealth = 'starting' | 'streaming' | 'waiting' | 'failed' | 'stopped';

/**
 * The metrics of one archived server (label `server`): feed it the events of `receiveWal` in
 * order. `observe` runs for every event, so it only writes fields; the values reach the registry
 * when it is scraped.
 */
export class ReceiveMetrics {
  readonly server: string;
  private readonly state: ServerState;
  private readonly families: ReceiveFamilies;
  private currentHealth: ReceiveHealth = 'starting';
  /** The error counted last: `failed` with the error a `disconnected` event carried counts it once. */
  private lastError: unknown;

  constructor(registry: Registry, server: string) {
    this.server = server;
    this.state = newServerState(server);
    this.families = receiveFamiliesOf(registry);
    this.families.add(this.state);
  }

  get health(): ReceiveHealth {
    return this.currentHealth;
  }

  observe(event: ReceiveEvent): void {
    const state = this.state;
    // A disconnect or a stop is no word from the server: an alert on this gauge must fire while
    // the server stays unreachable, whatever the number of attempts.
    if (event.type !== 'disconnected' && event.type !== 'stopping' && event.type !== 'stopped') {
      state.lastMessageSeconds = Date.now() / 1000;
    }
    switch (event.type) {
      case 'progress':
        this.progress(event.receivedLsn, event.durableLsn, event.serverWalEnd);
        return;
      case 'connected':
        state.connected = true;
        state.segmentSize = event.segmentSize;
        return;
      case 'streaming-started':
        // Every connection streams from a segment start, WAL that may have been received before.
        state.countedLsn = event.lsn;
        state.streamStartLsn = event.lsn;
        state.receivedLsn = event.lsn;
        state.timeline = event.timeline;
        this.currentHealth = 'streaming';
        return;
      case 'segment-finished':
        state.segmentsCompleted += 1;
        state.timeline = event.timeline;
        return;
      case 'timeline-switched':
        // The next timeline's WAL is received from the segment start of the switch point.
        state.countedLsn = segmentStart(event.lsn, state.segmentSize);
        state.timeline = event.timeline;
        return;
      case 'disconnected':
        state.connected = false;
        state.reconnects += 1;
        this.error(event.error);
        this.currentHealth = 'waiting';
        return;
      case 'stopping':
        return;
      case 'stopped':
        state.connected = false;
        this.currentHealth = 'stopped';
        return;
    }
  }

  /**
   * A failure that ended the stream (not retried): counted, unless it is the error of the
   * `disconnected` event just observed (a `--no-loop` run ends on it), and the server is `failed`.
   */
  failed(error: unknown): void {
    this.state.connected = false;
    if (error !== this.lastError) this.error(error);
    this.currentHealth = 'failed';
  }

  /**
   * Counts an error by its `code` (`WAL_ERR_*`, or a system error's `E…`; `unknown` without one).
   * `observe` already counts the error of a `disconnected` event.
   */
  error(error: unknown): void {
    this.lastError = error;
    const code = errorCode(error);
    const errors = this.state.errors;
    errors.set(code, (errors.get(code) ?? 0) + 1);
  }

  /** The object-storage sink's upload queue and confirmed position. */
  setUpload(status: UploadStatus): void {
    this.state.upload = {
      queuedFiles: status.queuedFiles,
      queuedBytes: status.queuedBytes,
      confirmedLsn: status.confirmedLsn,
    };
  }

  /**
   * Reports `source()` at every scrape from now on: a sink that keeps its own upload status is
   * read when Prometheus asks, at no cost per message.
   */
  followUploads(source: () => UploadStatus): void {
    this.state.uploadSource = source;
  }

  /** No upload status from now on (the server no longer uploads): its upload series go. */
  stopFollowingUploads(): void {
    this.state.uploadSource = undefined;
    this.state.upload = undefined;
  }

  /** Drops this server's series from the registry (the name may then be registered again). */
  remove(): void {
    this.families.delete(this.state);
  }

  private progress(receivedLsn: bigint, durableLsn: bigint, serverWalEnd: bigint): void {
    const state = this.state;
    if (receivedLsn > state.countedLsn) {
      state.receivedBytes += Number(receivedLsn - state.countedLsn);
      state.countedLsn = receivedLsn;
    }
    state.receivedLsn = receivedLsn;
    // A sink with nothing durable yet (an empty directory) reports 0.
    state.flushedLsn = durableLsn > state.streamStartLsn ? durableLsn : state.streamStartLsn;
    // 0 until the server has sent a message carrying its WAL end.
    if (serverWalEnd > 0n) state.serverLsn = serverWalEnd;
  }
}

function segmentStart(lsn: bigint, segmentSize: number): bigint {
  return segmentSize > 0 ? lsn - (lsn % BigInt(segmentSize)) : lsn;
}

/** A label value from a bounded set: error codes are identifiers, anything else is `unknown`. */
function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[A-Za-z0-9_]{1,64}$/.test(code) ? code : 'unknown';
}
