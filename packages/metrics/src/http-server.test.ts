import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createMetricsRegistry,
  formatListenAddress,
  type HealthSummary,
  MetricsError,
  type MetricsServer,
  parseListenAddress,
  ReceiveMetrics,
  startMetricsServer,
} from './index.js';

const PROMTOOL = '/usr/bin/promtool';

describe('startMetricsServer', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function start(health: () => HealthSummary = () => ({ healthy: true, ready: true })) {
    const registry = createMetricsRegistry();
    const metrics = new ReceiveMetrics(registry, 'default');
    server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry, health });
    return { metrics, url: (path: string) => `http://127.0.0.1:${server!.port}${path}` };
  }

  it('serves /metrics in the Prometheus text format, which promtool accepts', async () => {
    const { metrics, url } = await start();
    metrics.observe({ type: 'streaming-started', lsn: 0x1000000n, timeline: 1 });
    metrics.observe({
      type: 'progress',
      receivedLsn: 0x1000100n,
      durableLsn: 0x1000000n,
      serverWalEnd: 0x1000200n,
    });
    metrics.error(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    const response = await fetch(url('/metrics'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const body = await response.text();
    expect(body).toContain('wal_receive_lag_bytes{server="default"} 512\n');
    expect(body).toContain('process_cpu_seconds_total');
    if (existsSync(PROMTOOL)) execFileSync(PROMTOOL, ['check', 'metrics'], { input: body });
  });

  it('answers /healthz and /readyz from the health callback, and 404 elsewhere', async () => {
    let health: HealthSummary = { healthy: true, ready: false };
    const { url } = await start(() => health);
    expect((await fetch(url('/healthz'))).status).toBe(200);
    const notReady = await fetch(url('/readyz'));
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toBe('not ready\n');
    health = { healthy: false, ready: false };
    expect((await fetch(url('/healthz'))).status).toBe(503);
    health = { healthy: true, ready: true };
    expect((await fetch(url('/readyz?verbose'))).status).toBe(200);
    expect((await fetch(url('/'))).status).toBe(404);
    expect((await fetch(url('/metrics/x'))).status).toBe(404);
    expect((await fetch(url('/metrics'), { method: 'POST' })).status).toBe(405);
  });

  it('refuses a port in use with WAL_ERR_METRICS_LISTEN', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const registry = createMetricsRegistry({ processMetrics: false });
      const attempt = startMetricsServer({
        host: '127.0.0.1',
        port,
        registry,
        health: () => ({ healthy: true, ready: true }),
      });
      await expect(attempt).rejects.toThrow(MetricsError);
      await expect(attempt).rejects.toMatchObject({
        code: 'WAL_ERR_METRICS_LISTEN',
        message: `could not listen on 127.0.0.1:${port} for metrics: the address is already in use; choose another port or stop the process using it`,
      });
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

describe('parseListenAddress', () => {
  it('reads HOST:PORT, [IPV6]:PORT and :PORT', () => {
    expect(parseListenAddress('127.0.0.1:9187')).toEqual({ host: '127.0.0.1', port: 9187 });
    expect(parseListenAddress('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(parseListenAddress('[::1]:9187')).toEqual({ host: '::1', port: 9187 });
    expect(parseListenAddress(':9187')).toEqual({ host: '::', port: 9187 });
    expect(formatListenAddress({ host: '::1', port: 1 })).toBe('[::1]:1');
  });

  it.each([
    '9187',
    '127.0.0.1',
    '127.0.0.1:',
    '127.0.0.1:65536',
    '::1:9187',
    'host:port',
    '127.0.0.1:-1',
    '',
  ])('refuses %j', (text) => {
    expect(() => parseListenAddress(text)).toThrow(
      expect.objectContaining({
        code: 'WAL_ERR_METRICS_ADDRESS',
        message: expect.stringContaining(`"${text}"`),
      }),
    );
  });
});
