import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from '@wal/libpq-lite';
import { startCluster, startStandby, testedVersions } from '@wal/pg-cluster';
import { parseLsn, segmentNumberOf, walFileName } from '@wal/protocol';
import { describe, expect, it } from 'vitest';
import { segmentStartOf } from './positions.js';
import { receiveWal } from './receive-wal.js';
import { MemorySink } from './testing/index.js';
import type { ReceiveEvent } from './types.js';

describe.each(testedVersions())('receiveWal against PostgreSQL %i', (version) => {
  it('streams WAL into a sink byte for byte as the server has it in pg_wal, and stops past endpos', async () => {
    const cluster = await startCluster({ version, segmentSizeMb: 1 });
    try {
      await cluster.sql('CREATE TABLE items (id int, payload text)');
      const parameters = {
        host: cluster.host,
        port: String(cluster.port),
        user: cluster.superuser,
        dbname: 'replication',
        replication: 'true',
      };
      // Some WAL past the start point, flushed, then stream up to it.
      await cluster.sql("INSERT INTO items SELECT g, repeat('x', 200) FROM generate_series(1, 2000) g");
      const [row] = await cluster.sql<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
      // Stop once WAL strictly past endLsn arrived: one byte before the flush position, so the run
      // ends without waiting for more WAL.
      const endLsn = parseLsn(row!.lsn) - 1n;

      const sink = new MemorySink();
      const events: ReceiveEvent[] = [];
      for await (const event of receiveWal({
        connect: () => connect(parameters, { env: {} }),
        sink,
        endLsn,
        statusIntervalMs: 1000,
        reconnectDelayMs: 0,
      })) {
        events.push(event);
      }

      const stopped = events.at(-1);
      expect(stopped?.type).toBe('stopped');
      expect(events[0]).toMatchObject({
        type: 'connected',
        segmentSize: 1024 * 1024,
        serverVersion: expect.any(Number),
      });
      const written = sink.contiguous()!;
      const received = written.startLsn + BigInt(written.data.length);
      expect(received).toBeGreaterThan(endLsn);

      // Compare every segment the sink received with the server's file, over the received range.
      const segmentSize = 1024 * 1024;
      for (
        let segment = segmentNumberOf(written.startLsn, segmentSize);
        segment <= segmentNumberOf(received - 1n, segmentSize);
        segment++
      ) {
        const file = await readFile(join(cluster.pgWalDir, walFileName(1, segment, segmentSize)));
        const segmentStart = segment * BigInt(segmentSize);
        const from = segmentStart > written.startLsn ? segmentStart : written.startLsn;
        const to =
          received < segmentStart + BigInt(segmentSize) ? received : segmentStart + BigInt(segmentSize);
        const ours = written.data.subarray(Number(from - written.startLsn), Number(to - written.startLsn));
        const theirs = file.subarray(Number(from - segmentStart), Number(to - segmentStart));
        expect(ours.equals(theirs)).toBe(true);
      }
      expect(sink.calls.at(-1)).toBe('close');
    } finally {
      await cluster.stop();
    }
  });
});

describe('receiveWal against the newest tested PostgreSQL', () => {
  const version = testedVersions().at(-1) ?? 18;

  function parametersOf(cluster: { host: string; port: number; superuser: string }): Record<string, string> {
    return {
      host: cluster.host,
      port: String(cluster.port),
      user: cluster.superuser,
      dbname: 'replication',
      replication: 'true',
    };
  }

  it('with a slot and synchronous mode, an abort leaves the slot at what the sink made durable', async () => {
    const cluster = await startCluster({ version, segmentSizeMb: 1 });
    try {
      await cluster.sql("SELECT pg_create_physical_replication_slot('archive', true)");
      await cluster.sql(
        "CREATE TABLE items AS SELECT g AS id, repeat('y', 100) AS payload FROM generate_series(1, 3000) g",
      );
      const [row] = await cluster.sql<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
      const target = parseLsn(row!.lsn);
      const controller = new AbortController();
      const sink = new MemorySink();
      const events: ReceiveEvent[] = [];
      for await (const event of receiveWal({
        connect: () => connect(parametersOf(cluster), { env: {} }),
        sink,
        slot: 'archive',
        synchronous: true,
        statusIntervalMs: 1000,
        signal: controller.signal,
      })) {
        events.push(event);
        if (event.type === 'progress' && event.receivedLsn >= target) controller.abort();
      }
      const stopped = events.at(-1);
      expect(stopped).toMatchObject({ type: 'stopped', reason: 'aborted' });
      const [slot] = await cluster.sql<{ restart_lsn: string; active: boolean }>(
        "SELECT restart_lsn::text, active FROM pg_replication_slots WHERE slot_name = 'archive'",
      );
      expect(slot?.active).toBe(false);
      expect(parseLsn(slot!.restart_lsn)).toBe((stopped as { lsn: bigint }).lsn);
      expect(sink.durableLsn).toBe((stopped as { lsn: bigint }).lsn);
    } finally {
      await cluster.stop();
    }
  });

  it('answers the shutdown keepalive, reports the disconnection and reconnects after a server restart', async () => {
    const cluster = await startCluster({ version, segmentSizeMb: 1 });
    try {
      const controller = new AbortController();
      const sink = new MemorySink();
      const events: ReceiveEvent[] = [];
      let restarting: Promise<void> | undefined;
      for await (const event of receiveWal({
        connect: () => connect(parametersOf(cluster), { env: {} }),
        sink,
        statusIntervalMs: 1000,
        reconnectDelayMs: 100,
        signal: controller.signal,
      })) {
        events.push(event);
        // Restart without awaiting here: the walsender waits for our reply before it exits.
        if (event.type === 'streaming-started' && restarting === undefined) restarting = cluster.restart();
        if (event.type === 'streaming-started' && events.some((seen) => seen.type === 'disconnected')) {
          controller.abort();
        }
      }
      // A fast shutdown waits until the walsender got our reply to its last keepalive: the restart
      // finishing well within the test timeout (wal_sender_timeout is 60 s) shows it was answered.
      await restarting;
      const disconnected = events.filter((event) => event.type === 'disconnected');
      expect(disconnected.length).toBeGreaterThanOrEqual(1);
      // The server ended COPY ("COPY 0" then EOF), or the connection went away first.
      expect(disconnected[0]!.error.code).toMatch(/^WAL_ERR_(STREAM_TERMINATED|CONNECTION_|SERVER)/);
      expect(events.filter((event) => event.type === 'connected').length).toBeGreaterThanOrEqual(2);
      expect(events.at(-1)).toMatchObject({ type: 'stopped', reason: 'aborted' });
    } finally {
      await cluster.stop();
    }
  });

  it('follows a timeline switch: old timeline up to the switch point, history file, then the new timeline', async () => {
    const primary = await startCluster({ version, segmentSizeMb: 1 });
    let standby: Awaited<ReturnType<typeof startStandby>> | undefined;
    try {
      await primary.sql('CREATE TABLE items (x int); INSERT INTO items SELECT generate_series(1, 1000)');
      standby = await startStandby(primary);
      const [position] = await primary.sql<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      await standby.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${position?.lsn}'::pg_lsn`);
      await primary.stop();
      await standby.promote();
      await standby.sql('INSERT INTO items SELECT generate_series(1, 1000)');
      const [history] = await standby.sql<{ content: string }>(
        "SELECT pg_read_file('pg_wal/00000002.history') AS content",
      );
      const switchPoint = parseLsn(history!.content.split('\t')[1]!);
      const [flushed] = await standby.sql<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');

      // A sink that stopped on timeline 1 in the segment of the switch point.
      const sink = new MemorySink();
      sink.resume = { lsn: segmentStartOf(switchPoint, 1024 * 1024), timeline: 1 };
      const events: ReceiveEvent[] = [];
      for await (const event of receiveWal({
        connect: () => connect(parametersOf(standby!), { env: {} }),
        sink,
        endLsn: parseLsn(flushed!.lsn) - 1n,
        reconnectDelayMs: 0,
        noLoop: true,
      })) {
        events.push(event);
      }
      expect(events).toContainEqual({ type: 'timeline-switched', timeline: 2, lsn: switchPoint });
      expect(events.at(-1)).toMatchObject({ type: 'stopped', reason: 'endpos', timeline: 2 });
      expect(sink.historyFiles.get(2)?.toString()).toBe(history!.content);
      const timelines = sink.writes.map((write) => write.timeline);
      expect(timelines.at(-1)).toBe(2);
      // Timeline 2 restarts at the segment start of the switch point.
      const firstOnTwo = sink.writes.find((write) => write.timeline === 2);
      expect(firstOnTwo?.startLsn).toBe(segmentStartOf(switchPoint, 1024 * 1024));
    } finally {
      await standby?.stop();
      await primary.stop();
    }
  });
});
