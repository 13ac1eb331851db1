import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@wal/libpq-lite';
import type { Cluster } from '@wal/pg-cluster';
import { parseLsn } from '@wal/protocol';
import { S3Error, type S3Store } from '@wal/s3';
import { type ReceiveEvent, type ReceiveWalOptions, receiveWal, type WalSink } from '@wal/stream';
import type { StoredObject, UploadStore } from './store.js';

export const SEGMENT_SIZE = 1024 * 1024;

/**
 * The real store (s3rver) behind a switch the test controls: while `down`, every request fails
 * the way an unreachable store does after the client's retries (a retryable S3Error). Records the
 * names it was asked to PUT.
 */
export class SwitchedStore implements UploadStore {
  readonly url: string;
  down = false;
  readonly puts: string[] = [];
  /** Awaited before each PUT reaches the store (a slow store). */
  beforePut: ((name: string) => Promise<void>) | undefined;

  constructor(readonly store: S3Store) {
    this.url = store.url;
  }

  #check(operation: string): void {
    if (this.down) {
      throw new S3Error('WAL_ERR_S3_UNAVAILABLE', `${operation} ${this.url}: the store is down (test)`, {
        retryable: true,
        status: 503,
      });
    }
  }

  async put(
    name: string,
    body: Buffer,
    options?: { ifNoneMatch?: boolean },
  ): Promise<'created' | 'identical'> {
    await this.#beforeUpload(name);
    return this.store.put(name, body, options);
  }

  async putFile(
    name: string,
    path: string,
    options?: { ifNoneMatch?: boolean },
  ): Promise<'created' | 'identical'> {
    await this.#beforeUpload(name);
    return this.store.putFile(name, path, options);
  }

  /** A PUT of either kind: refused while down (also once `beforePut` let it go), then recorded. */
  async #beforeUpload(name: string): Promise<void> {
    this.#check('PUT');
    await this.beforePut?.(name);
    this.#check('PUT');
    this.puts.push(name);
  }

  async *list(): AsyncIterable<StoredObject> {
    this.#check('LIST');
    yield* this.store.list();
  }

  async delete(name: string): Promise<void> {
    this.#check('DELETE');
    await this.store.delete(name);
  }
}

export function temporaryDirectory(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function replicationParameters(cluster: Cluster): Record<string, string> {
  return {
    host: cluster.host,
    port: String(cluster.port),
    user: cluster.superuser,
    dbname: 'replication',
    replication: 'true',
  };
}

/** `count` segments of WAL (each ended by pg_switch_wal), then a little more; the flush position. */
export async function makeSegments(cluster: Cluster, count: number): Promise<bigint> {
  for (let index = 0; index < count; index += 1) {
    await cluster.sql("INSERT INTO items SELECT g, repeat('x', 300) FROM generate_series(1, 2000) g");
    await cluster.sql('SELECT pg_switch_wal()');
  }
  await cluster.sql("INSERT INTO items SELECT g, repeat('y', 300) FROM generate_series(1, 500) g");
  return flushLsn(cluster);
}

export async function flushLsn(cluster: Cluster): Promise<bigint> {
  const [row] = await cluster.sql<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
  return parseLsn(row!.lsn);
}

/** Streams into `sink` until `endLsn` (or the signal); the events. */
export async function stream(
  cluster: Cluster,
  sink: WalSink,
  options: Partial<ReceiveWalOptions> = {},
  onEvent?: (event: ReceiveEvent) => void,
): Promise<ReceiveEvent[]> {
  const events: ReceiveEvent[] = [];
  for await (const event of receiveWal({
    connect: () => connect(replicationParameters(cluster), { env: {} }),
    sink,
    statusIntervalMs: 1000,
    reconnectDelayMs: 100,
    ...options,
  })) {
    events.push(event);
    onEvent?.(event);
  }
  return events;
}

export async function objectNames(store: S3Store): Promise<string[]> {
  const names: string[] = [];
  for await (const object of store.list()) names.push(object.name);
  return names.sort();
}

export async function spoolNames(directory: string): Promise<string[]> {
  return (await readdir(directory)).sort();
}
