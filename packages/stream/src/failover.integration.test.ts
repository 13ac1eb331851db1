import { connect } from '@wal/libpq-lite';
import { type Cluster, startCluster, startStandby, testedVersions } from '@wal/pg-cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { receiveWal } from './receive-wal.js';
import { MemorySink } from './testing/index.js';
import type { ReceiveEvent } from './types.js';

const version = Math.max(...testedVersions());

/**
 * target_session_attrs=primary over two hosts: the receiver streams from the primary; after the
 * primary stops and the standby is promoted, its reconnects find the new leader (the same system,
 * so the system identifier check passes) and it follows the timeline switch.
 */
describe(`failover with target_session_attrs=primary, PostgreSQL ${version}`, () => {
  let primary: Cluster;
  let standby: Cluster;

  beforeAll(async () => {
    primary = await startCluster({ version, segmentSizeMb: 1 });
    await primary.sql('CREATE TABLE items (id int)');
    standby = await startStandby(primary);
  }, 120_000);
  afterAll(async () => {
    await standby?.stop();
    await primary?.stop();
  });

  it('reconnects to the promoted standby and continues on its new timeline', async () => {
    const parameters = {
      host: `${standby.host},${primary.host}`,
      port: `${standby.port},${primary.port}`,
      user: primary.superuser,
      dbname: 'replication',
      replication: 'true',
      target_session_attrs: 'primary',
    };
    const controller = new AbortController();
    const events: ReceiveEvent[] = [];
    const sink = new MemorySink();
    // Consumed all the time: the loop is pull-based, and a walsender's shutdown waits for our replies.
    let wake: (() => void) | undefined;
    let ended = false;
    const consuming = (async () => {
      try {
        for await (const event of receiveWal({
          connect: () => connect(parameters, { env: { HOME: '/nonexistent' } }),
          sink,
          reconnectDelayMs: 200,
          statusIntervalMs: 200,
          signal: controller.signal,
        })) {
          events.push(event);
          wake?.();
        }
      } finally {
        ended = true;
        wake?.();
      }
    })();
    let seen = 0;
    const waitFor = async (match: (event: ReceiveEvent) => boolean): Promise<ReceiveEvent> => {
      for (;;) {
        while (seen < events.length) {
          const event = events[seen++]!;
          if (match(event)) return event;
        }
        if (ended) throw new Error(`receiveWal ended after ${JSON.stringify(events.map((e) => e.type))}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    };

    const first = await waitFor((event) => event.type === 'connected');
    expect(first).toMatchObject({ timeline: 1 });
    await waitFor((event) => event.type === 'streaming-started');
    const [row] = await primary.sql<{ lsn: string }>(
      'INSERT INTO items SELECT generate_series(1, 1000); SELECT pg_current_wal_flush_lsn()::text AS lsn',
    );
    await standby.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${row!.lsn}'::pg_lsn`);
    await primary.shutdown('fast');
    // With the primary down, the standby alone is refused for what it is.
    await waitFor(
      (event) =>
        event.type === 'disconnected' && event.error.message.includes('server is in hot standby mode'),
    );

    await standby.promote();
    const second = await waitFor((event) => event.type === 'connected');
    expect(second).toMatchObject({ timeline: 2, systemId: first.type === 'connected' ? first.systemId : 0n });
    const switched = await waitFor((event) => event.type === 'timeline-switched');
    expect(switched).toMatchObject({ timeline: 2 });
    await standby.sql('INSERT INTO items SELECT generate_series(1, 1000)');
    await waitFor((event) => event.type === 'progress' || event.type === 'segment-finished');

    controller.abort();
    await consuming;
    expect(events.at(-1)?.type).toBe('stopped');
    expect(sink.historyFiles.has(2)).toBe(true);
  }, 90_000);

  it('stops when the next primary in the list is another system (the system identifier guard)', async () => {
    const other = await startCluster({ version, segmentSizeMb: 1 });
    const first = await startCluster({ version, segmentSizeMb: 1 });
    try {
      const parameters = {
        host: `${first.host},${other.host}`,
        port: `${first.port},${other.port}`,
        user: first.superuser,
        dbname: 'replication',
        replication: 'true',
        target_session_attrs: 'primary',
      };
      const events: ReceiveEvent[] = [];
      let failure: unknown;
      try {
        for await (const event of receiveWal({
          connect: () => connect(parameters, { env: { HOME: '/nonexistent' } }),
          sink: new MemorySink(),
          reconnectDelayMs: 100,
          statusIntervalMs: 200,
        })) {
          events.push(event);
          // Streaming from the first primary: take it away; the next connect finds the other one.
          if (
            event.type === 'streaming-started' &&
            events.filter((e) => e.type === 'streaming-started').length === 1
          ) {
            await first.shutdown('immediate');
          }
        }
      } catch (error) {
        failure = error;
      }
      expect(events.filter((event) => event.type === 'connected')).toHaveLength(1);
      expect((failure as { code?: string }).code).toBe('WAL_ERR_STREAM_SYSTEM_ID_CHANGED');
    } finally {
      await first.stop();
      await other.stop();
    }
  }, 90_000);
});
