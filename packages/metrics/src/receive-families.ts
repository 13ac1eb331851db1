import { Counter, Gauge, type Registry } from 'prom-client';
import { MetricsError } from './errors.js';
import { currentUpload, type ServerState } from './server-state.js';

/** One `wal_receive_*` family with a `server` label: its value read from a server's state. */
interface Family {
  readonly type: 'counter' | 'gauge';
  readonly name: string;
  readonly help: string;
  /** Undefined: the server has no such sample (yet). */
  readonly value: (state: ServerState) => number | bigint | undefined;
}

/** In the order a scrape lists them. */
const FAMILIES: readonly Family[] = [
  {
    type: 'counter',
    name: 'wal_receive_received_bytes_total',
    help: 'WAL bytes received from the server.',
    value: (s) => s.receivedBytes,
  },
  {
    type: 'gauge',
    name: 'wal_receive_received_lsn',
    help: 'Position up to which WAL was received, in bytes.',
    value: (s) => s.receivedLsn,
  },
  {
    type: 'gauge',
    name: 'wal_receive_flushed_lsn',
    help: 'Position up to which received WAL is durable (fsynced or stored), in bytes.',
    value: (s) => s.flushedLsn,
  },
  {
    type: 'gauge',
    name: 'wal_receive_server_lsn',
    help: "The server's WAL end from its keepalives and WAL messages, in bytes.",
    value: (s) => s.serverLsn,
  },
  {
    type: 'gauge',
    name: 'wal_receive_lag_bytes',
    help: "The server's WAL end minus the durable position, in bytes.",
    value: lagBytes,
  },
  {
    type: 'counter',
    name: 'wal_receive_segments_completed_total',
    help: 'WAL segments received completely.',
    value: (s) => s.segmentsCompleted,
  },
  {
    type: 'counter',
    name: 'wal_receive_reconnects_total',
    help: 'Reconnections after a failed connection.',
    value: (s) => s.reconnects,
  },
  {
    type: 'gauge',
    name: 'wal_receive_connected',
    help: '1 while a replication connection is open, else 0.',
    value: (s) => (s.connected ? 1 : 0),
  },
  {
    type: 'gauge',
    name: 'wal_receive_timeline',
    help: 'Timeline of the WAL being received.',
    value: (s) => s.timeline,
  },
  {
    type: 'gauge',
    name: 'wal_receive_last_message_timestamp_seconds',
    help: 'Unix time of the last report from the stream (connection, WAL, segment end).',
    value: (s) => s.lastMessageSeconds,
  },
  {
    type: 'gauge',
    name: 'wal_receive_upload_queued_files',
    help: 'Files waiting to be uploaded to object storage.',
    value: (s) => currentUpload(s)?.queuedFiles,
  },
  {
    type: 'gauge',
    name: 'wal_receive_upload_queued_bytes',
    help: 'Bytes waiting to be uploaded to object storage.',
    value: (s) => currentUpload(s)?.queuedBytes,
  },
  {
    type: 'gauge',
    name: 'wal_receive_uploaded_lsn',
    help: 'Position up to which object storage has confirmed the WAL, in bytes.',
    value: (s) => currentUpload(s)?.confirmedLsn,
  },
];

/**
 * The `wal_receive_*` metric families of one registry, shared by all its servers. Values are
 * copied from each server's state when Prometheus scrapes (`collect`), so a stream event costs a
 * few field writes and no label hashing; a removed server's series vanish with its state.
 */
export class ReceiveFamilies {
  private readonly states = new Map<string, ServerState>();

  constructor(registry: Registry) {
    const states = this.states;
    for (const { type, name, help, value } of FAMILIES) {
      const Family = type === 'counter' ? Counter : Gauge;
      new Family({
        name,
        help,
        labelNames: ['server'],
        registers: [registry],
        collect() {
          this.reset();
          for (const state of states.values()) {
            const current = value(state);
            if (current === undefined) continue;
            if (this instanceof Gauge) this.set({ server: state.server }, Number(current));
            else this.inc({ server: state.server }, Number(current));
          }
        },
      });
    }
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
