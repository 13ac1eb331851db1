import { setTimeout as delay } from 'node:timers/promises';
import { connect } from '@wal/libpq-lite';
import { type Cluster, startCluster, testedVersions } from '@wal/pg-cluster';
import { parseLsn } from '@wal/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { segmentStartOf } from './positions.js';
import { receiveWal } from './receive-wal.js';
import { SlotInvalidatedError } from './slot-invalidation.js';
import { MemorySink } from './testing/index.js';
import type { ReceiveEvent } from './types.js';

const runs18 = testedVersions().includes(18);

function replicationParameters(cluster: Cluster): Record<string, string> {
  return {
    host: cluster.host,
    port: String(cluster.port),
    user: cluster.superuser,
    dbname: 'replication',
    replication: 'true',
  };
}

/** Streams through the slot up to the server's current flush position, into `sink`. */
async function streamSome(cluster: Cluster, slot: string, sink: MemorySink): Promise<void> {
  await cluster.sql('CREATE TABLE IF NOT EXISTS items AS SELECT g FROM generate_series(1, 1000) g');
  await cluster.sql('INSERT INTO items SELECT g FROM generate_series(1, 1000) g');
  const [row] = await cluster.sql<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
  for await (const event of receiveWal({
    connect: () => connect(replicationParameters(cluster), { env: {} }),
    sink,
    slot,
    endLsn: parseLsn(row!.lsn) - 1n,
    reconnectDelayMs: 0,
    statusIntervalMs: 100,
  })) {
    if (event.type === 'stopped') break;
  }
  // Where a directory holding this WAL would resume: the start of its last (partial) segment.
  const written = sink.contiguous()!;
  const end = written.startLsn + BigInt(written.data.length);
  sink.resume = { lsn: segmentStartOf(end, 1024 * 1024), timeline: 1 };
}

async function receiveFailure(cluster: Cluster, slot: string, sink: MemorySink) {
  const events: ReceiveEvent[] = [];
  try {
    for await (const event of receiveWal({
      connect: () => connect(replicationParameters(cluster), { env: {} }),
      sink,
      slot,
      reconnectDelayMs: 0,
    })) {
      events.push(event);
    }
  } catch (error) {
    return { events, error };
  }
  throw new Error('expected receiveWal to fail');
}

async function slotState(cluster: Cluster, slot: string) {
  const [row] = await cluster.sql<{ wal_status: string; invalidation_reason: string | null }>(
    'SELECT wal_status, invalidation_reason FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  return row;
}

describe.skipIf(!runs18)('an invalidated slot on PostgreSQL 18', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({
      version: 18,
      segmentSizeMb: 1,
      settings: { max_slot_wal_keep_size: '2MB', checkpoint_timeout: '1h' },
    });
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('stops with the reason idle_timeout and where the archive ends, without retrying', async () => {
    await cluster.sql("SELECT pg_create_physical_replication_slot('idle', true)");
    const sink = new MemorySink();
    await streamSome(cluster, 'idle', sink);
    const stored = await sink.resumePoint();
    expect(stored).toBeDefined();

    // The unit is seconds from 18.0 on (minutes in the 18 betas): 1 s, then a checkpoint once the
    // slot has been idle longer than that invalidates it.
    await cluster.sql('ALTER SYSTEM SET idle_replication_slot_timeout = 1');
    await cluster.sql('SELECT pg_reload_conf()');
    const [unit] = await cluster.sql<{ unit: string }>(
      "SELECT unit FROM pg_settings WHERE name = 'idle_replication_slot_timeout'",
    );
    expect(unit?.unit).toBe('s');
    await delay(2500);
    await cluster.sql('CHECKPOINT');
    expect(await slotState(cluster, 'idle')).toMatchObject({ invalidation_reason: 'idle_timeout' });
    await cluster.sql('ALTER SYSTEM RESET idle_replication_slot_timeout');
    await cluster.sql('SELECT pg_reload_conf()');

    const { events, error } = await receiveFailure(cluster, 'idle', sink);
    expect(events.some((event) => event.type === 'disconnected')).toBe(false);
    expect(error).toBeInstanceOf(SlotInvalidatedError);
    const failure = error as SlotInvalidatedError;
    expect(failure.code).toBe('WAL_ERR_STREAM_SLOT_INVALIDATED');
    expect(failure.invalidationReason).toBe('idle_timeout');
    expect(failure.gapStartLsn).toBe(stored!.lsn);
    expect(failure.message).toContain('The archive has no WAL from');
    expect((failure.cause as { sqlState?: string }).sqlState).toBe('55000');
  }, 60_000);
});

/** Enough WAL past the slot, then a checkpoint: max_slot_wal_keep_size invalidates it (13+). */
async function exceedKeepSize(cluster: Cluster, slot: string): Promise<void> {
  for (let segment = 0; segment < 6; segment++) {
    await cluster.sql('INSERT INTO items SELECT g FROM generate_series(1, 100) g');
    await cluster.sql('SELECT pg_switch_wal()');
  }
  await cluster.sql('CHECKPOINT');
  const [row] = await cluster.sql<{ wal_status: string }>(
    'SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  expect(row?.wal_status).toBe('lost');
}

describe.each(testedVersions())('a slot invalidated by max_slot_wal_keep_size, PostgreSQL %i', (version) => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({
      version,
      segmentSizeMb: 1,
      settings: { max_slot_wal_keep_size: '2MB', checkpoint_timeout: '1h' },
    });
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('stops without retrying, saying the slot is invalidated and where the archive ends', async () => {
    await cluster.sql("SELECT pg_create_physical_replication_slot('kept', true)");
    const sink = new MemorySink();
    await streamSome(cluster, 'kept', sink);
    await exceedKeepSize(cluster, 'kept');

    const { events, error } = await receiveFailure(cluster, 'kept', sink);
    expect(events.some((event) => event.type === 'disconnected')).toBe(false);
    const failure = error as SlotInvalidatedError;
    if (version < 15) {
      // No READ_REPLICATION_SLOT, and a physical replication connection cannot read
      // pg_replication_slots: the server's 58P01 stands.
      expect(failure.code).toBe('WAL_ERR_STREAM_WAL_REMOVED');
      expect(failure.message).toContain('Replication slot "kept" did not keep this WAL');
      return;
    }
    expect(failure.code).toBe('WAL_ERR_STREAM_SLOT_INVALIDATED');
    expect(failure.message).toContain('max_slot_wal_keep_size');
    expect(failure.gapStartLsn).toBe((await sink.resumePoint())!.lsn);
    expect(failure.message).toContain('The archive has no WAL from');
    // 18 refuses the slot with 55000 and names the reason; 13-17 stream, then fail with 58P01.
    expect(failure.invalidationReason).toBe(version >= 18 ? 'wal_removed' : undefined);
    expect((failure.cause as { sqlState?: string }).sqlState).toBe(version >= 18 ? '55000' : '58P01');
  }, 60_000);
});
