import { connect } from '@wal/libpq-lite';
import { type Cluster, startCluster, testedVersions } from '@wal/pg-cluster';
import { type ReceiveEvent, receiveWal } from '@wal/stream';
import { MemorySink } from '@wal/stream/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMetricsRegistry,
  type MetricsServer,
  ReceiveMetrics,
  startMetricsServer,
  summarizeHealth,
} from './index.js';

/**
 * The library path a daemon takes: two servers' streams in one process, each feeding its own
 * ReceiveMetrics in one registry, one endpoint. A stream that ends with an error the loop does not
 * retry turns `/healthz` to 503 while the other server keeps streaming (a real fatal case: a
 * connection that turns out to be database specific, refused by the startup checks).
 */

const version = testedVersions().at(-1) ?? 18;

describe(`health of a daemon-style process on PostgreSQL ${version}`, () => {
  let cluster: Cluster;
  let endpoint: MetricsServer | undefined;
  beforeAll(async () => {
    cluster = await startCluster({ version, segmentSizeMb: 1 });
  });
  afterAll(async () => {
    await endpoint?.close();
    await cluster?.stop();
  });

  function parameters(replication: 'true' | 'database'): Record<string, string> {
    return {
      host: cluster.host,
      port: String(cluster.port),
      user: cluster.superuser,
      dbname: 'postgres',
      replication,
    };
  }

  it('stays healthy while one server streams, and answers 503 once another has failed', async () => {
    const registry = createMetricsRegistry();
    const good = new ReceiveMetrics(registry, 'good');
    const bad = new ReceiveMetrics(registry, 'bad');
    endpoint = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      registry,
      health: () => summarizeHealth([good, bad]),
    });
    const get = (path: string) => fetch(`http://127.0.0.1:${endpoint!.port}${path}`);

    const stop = new AbortController();
    let streaming!: () => void;
    const started = new Promise<void>((resolve) => {
      streaming = resolve;
    });
    const goodRun = (async () => {
      for await (const event of receiveWal({
        connect: (signal) => connect(parameters('true'), { env: {}, signal }),
        sink: new MemorySink(),
        statusIntervalMs: 1000,
        signal: stop.signal,
      })) {
        good.observe(event);
        if (event.type === 'streaming-started') streaming();
      }
    })();
    await started;
    expect(good.health).toBe('streaming');
    // The second server has not started: not ready, but nothing failed.
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/readyz')).status).toBe(503);

    const badEvents: ReceiveEvent['type'][] = [];
    try {
      for await (const event of receiveWal({
        connect: (signal) => connect(parameters('database'), { env: {}, signal }),
        sink: new MemorySink(),
      })) {
        badEvents.push(event.type);
        bad.observe(event);
      }
      expect.unreachable('a database-specific connection must be refused');
    } catch (error) {
      bad.failed(error);
    }
    expect(bad.health).toBe('failed');
    expect(good.health).toBe('streaming');

    const healthz = await get('/healthz');
    expect(healthz.status).toBe(503);
    expect(await healthz.text()).toBe('unhealthy\n');
    expect((await get('/readyz')).status).toBe(503);
    const metrics = await (await get('/metrics')).text();
    expect(metrics).toContain(
      'wal_receive_errors_total{server="bad",code="WAL_ERR_STREAM_DATABASE_SPECIFIC"} 1\n',
    );
    expect(metrics).toContain('wal_receive_connected{server="good"} 1\n');
    expect(metrics).toContain('wal_receive_connected{server="bad"} 0\n');

    // The failed server removed (a daemon reloading without it): healthy and ready again.
    bad.remove();
    const remaining = summarizeHealth([good]);
    expect(remaining).toEqual({ healthy: true, ready: true });
    expect((await (await get('/metrics')).text()).includes('server="bad"')).toBe(false);

    stop.abort();
    await goodRun;
    expect(good.health).toBe('stopped');
  });
});
