import { rm } from 'node:fs/promises';
import { type ScriptedS3, startScriptedS3 } from '@wal/fake-s3';
import { type Cluster, startCluster, testedVersions } from '@wal/pg-cluster';
import { parseLsn } from '@wal/protocol';
import { openS3Store } from '@wal/s3';
import type { ReceiveEvent } from '@wal/stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Sink } from './s3-sink.js';
import { flushLsn, makeSegments, stream, temporaryDirectory } from './test-support.js';

const version = testedVersions().at(-1) ?? 18;
let cluster: Cluster;
let s3: ScriptedS3;

interface Replication {
  pid: number;
  flush: bigint;
  restart: bigint;
}

async function replication(): Promise<Replication | undefined> {
  const rows = await cluster.sql<{ pid: number; flush: string | null; restart: string | null }>(
    `SELECT r.pid, r.flush_lsn::text AS flush, s.restart_lsn::text AS restart
       FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid
      WHERE s.slot_name = 'remote'`,
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  return {
    pid: row.pid,
    flush: row.flush === null ? 0n : parseLsn(row.flush),
    restart: row.restart === null ? 0n : parseLsn(row.restart),
  };
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > giveUpAt) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe(`--ack remote against PostgreSQL ${version} (wal_sender_timeout 5s) and a store that goes down`, () => {
  beforeAll(async () => {
    [cluster, s3] = await Promise.all([
      startCluster({ version, segmentSizeMb: 1, settings: { wal_sender_timeout: '5s' } }),
      startScriptedS3({ buckets: ['archive'] }),
    ]);
    await cluster.sql('CREATE TABLE items (id int, payload text)');
    await cluster.sql("SELECT pg_create_physical_replication_slot('remote', true)");
  });
  afterAll(async () => {
    await Promise.all([cluster?.stop(), s3?.stop()]);
  });

  it('holds the slot while the store is down, keeps the same walsender, then advances', async () => {
    const spool = await temporaryDirectory('sink-s3-ack-');
    const controller = new AbortController();
    const store = openS3Store('s3://archive/ack', { env: s3.env, retry: { attempts: 1 } });
    const sink = new S3Sink({
      store,
      spool,
      ack: 'remote',
      maxQueuedFiles: 2,
      partialUploadIntervalMs: 500,
      retryDelayMs: { first: 200, max: 1000 },
      signal: controller.signal,
    });
    const events: ReceiveEvent[] = [];
    // The default status interval (10 s) is longer than wal_sender_timeout: while the sink holds
    // the stream, only the loop's own statuses keep the walsender alive.
    const streaming = stream(
      cluster,
      sink,
      { slot: 'remote', statusIntervalMs: 10_000, signal: controller.signal },
      (event) => events.push(event),
    );
    try {
      const first = await makeSegments(cluster, 2);
      const before = await until(async () => {
        const state = await replication();
        return state !== undefined && state.restart >= first - 1024n * 1024n && state.flush > 0n
          ? state
          : undefined;
      }, 'the slot to follow the store');

      // An outage: the endpoint refuses connections (the client's own retries give up).
      await s3.down('refuse');
      const held = await replication();
      await makeSegments(cluster, 8);
      const target = await flushLsn(cluster);
      // Twice wal_sender_timeout with the spool full and the store down.
      await sleep(11_000);
      const during = await replication();
      expect(during?.pid).toBe(before.pid);
      expect(during!.flush).toBeLessThanOrEqual(held!.flush + 1024n * 1024n);
      expect(during!.restart).toBeLessThan(target - 2n * 1024n * 1024n);
      expect(sink.uploadStatus().queuedFiles).toBe(2);
      expect(sink.uploadStatus().confirmedLsn).toBeLessThan(target - 2n * 1024n * 1024n);

      await s3.up();
      const after = await until(async () => {
        const state = await replication();
        return state !== undefined && state.restart >= target - 1024n * 1024n ? state : undefined;
      }, 'the slot to advance once the store is back');
      expect(after.pid).toBe(before.pid);
      expect(events.filter((event) => event.type === 'disconnected')).toEqual([]);
    } finally {
      controller.abort();
      await streaming.catch(() => {});
      await s3.up();
      await sink.finish().catch(() => {});
      store.close();
      await rm(spool, { recursive: true, force: true });
    }
  }, 150_000);
});
