import { Counter, Gauge, type Registry } from 'prom-client';
import { MetricsError } from './errors.js';
import { currentUpload, type ServerState } from './server-state.js';

/**
 * The `wal_receive_*` metric families of one registry, shared by all its servers. Values are
 * copied from each server's state when Prometheus scrapes (`collect`), so a stream event costs a
 * few field writes and no label hashing; a removed server's series vanish with its state.
 */
export class ReceiveFamilies {
  private readonly states = new Map<string, ServerState>();

  constructor(registry: Registry) {
    const states = this.states;
    const gauge = (name: string, help: string, value: (state: ServerState) => number | bigint | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['server'],
        registers: [registry],
        collect() {
          this.reset();
          for (const state of states.values()) {
            const current = value(state);
            if (current !== undefined) this.set({ server: state.server }, Number(current));
          }
        },
      });
    const counter = (name: string, help: string, value: (state: ServerState) => number) =>
      new Counter({
        name,
        help,
        labelNames: ['server'],
        registers: [registry],
        collect() {
          this.reset();
          for (const state of states.values()) this.inc({ server: state.server }, value(state));
        },
      });

    counter(
      'wal_receive_received_bytes_total',
      'WAL bytes received from the server.',
      (s) => s.receivedBytes,
    );
    gauge(
      'wal_receive_received_lsn',
      'Position up to which WAL was received, in bytes.',
      (s) => s.receivedLsn,
    );
    gauge(
      'wal_receive_flushed_lsn',
      'Position up to which received WAL is durable (fsynced or stored), in bytes.',
      (s) => s.flushedLsn,
    );
    gauge(
      'wal_receive_server_lsn',
      "The server's WAL end from its keepalives and WAL messages, in bytes.",
      (s) => s.serverLsn,
    );
    gauge('wal_receive_lag_bytes', "The server's WAL end minus the durable position, in bytes.", lagBytes);
    counter(
      'wal_receive_segments_completed_total',
      'WAL segments received completely.',
      (s) => s.segmentsCompleted,
    );
    counter('wal_receive_reconnects_total', 'Reconnections after a failed connection.', (s) => s.reconnects);
    gauge('wal_receive_connected', '1 while a replication connection is open, else 0.', (s) =>
      s.connected ? 1 : 0,
    );
    gauge('wal_receive_timeline', 'Timeline of the WAL being received.', (s) => s.timeline);
    gauge(
      'wal_receive_last_message_timestamp_seconds',
      'Unix time of the last report from the stream (connection, WAL, segment end).',
      (s) => s.lastMessageSeconds,
    );
    gauge(
      'wal_receive_upload_queued_files',
      'Files waiting to be uploaded to object storage.',
      (s) => currentUpload(s)?.queuedFiles,
    );
    gauge(
      'wal_receive_upload_queued_bytes',
      'Bytes waiting to be uploaded to object storage.',
      (s) => currentUpload(s)?.queuedBytes,
    );
    gauge(
      'wal_receive_uploaded_lsn',
      'Position up to which object storage has confirmed the WAL, in bytes.',
      (s) => currentUpload(s)?.confirmedLsn,
    );
    new Counter({
      name: 'wal_receive_errors_total',
      help: 'Errors by code, retried or fatal.',
      labelNames: ['server', 'code'],
      registers: [registry],
      collect() {
        this.reset();
        for (const state of states.values()) {
          for (const [code, count] of state.errors) this.inc({ server: state.server, code }, count);
        }
      },
    });
  }

  add(state: ServerState): void {
    if (this.states.has(state.server)) {
      throw new MetricsError(
        'WAL_ERR_METRICS_DUPLICATE_SERVER',
        `metrics for server "${state.server}" are already registered; remove them first`,
      );
    }
    this.states.set(state.server, state);
  }

  delete(state: ServerState): void {
    if (this.states.get(state.server) === state) this.states.delete(state.server);
  }
}

/** Server end minus durable position; never negative (the two come from different messages). */
function lagBytes(state: ServerState): bigint | undefined {
  const { serverLsn, flushedLsn } = state;
  if (serverLsn === undefined || flushedLsn === undefined) return undefined;
  return serverLsn > flushedLsn ? serverLsn - flushedLsn : 0n;
}

const families = new WeakMap<Registry, ReceiveFamilies>();

/** The registry's families, registered on first use. */
export function receiveFamiliesOf(registry: Registry): ReceiveFamilies {
  let found = families.get(registry);
  if (found === undefined) {
    found = new ReceiveFamilies(registry);
    families.set(registry, found);
  }
  return found;
}
