import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  describeRun,
  generateWal,
  listFiles,
  runReceive,
  startReceive,
  suiteVersion,
  switchWal,
  useSuiteServer,
  waitUntil,
} from './harness.js';
import {
  havePrometheus,
  metricsUrl,
  PROMTOOL,
  parseSamples,
  queryUntil,
  serverSample,
  withPrometheus,
} from './prometheus.js';

/**
 * `wal receive --metrics-address`: the built CLI against a real server. `/metrics` passes
 * `promtool check metrics`; received bytes grow with the server's WAL; the lag is the server's WAL
 * end minus the flushed position; `/healthz` stays 200 while streaming and while waiting to
 * reconnect after a restart; a real Prometheus scrapes the endpoint and answers a query for the lag.
 * (503 after a fatal error is shown on the library path, packages/metrics: `wal receive` exits then.)
 */

const VERSION = suiteVersion(18);
const required = process.env.WAL_REQUIRE_CLIENT_TOOLS === '1';

/** A scrape of `url`: 200 in the text format, its samples parsed. */
async function scrape(url: string): Promise<{ text: string; samples: Map<string, number> }> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  return { text, samples: parseSamples(text) };
}

function value(samples: Map<string, number>, name: string): number {
  return serverSample(samples, name, 'default');
}

async function status(url: string): Promise<number> {
  return (await fetch(url)).status;
}

describe(`wal receive --metrics-address on PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'metrics', table: 'flow' });

  it.runIf(havePrometheus || required)(
    'serves metrics promtool accepts, stays healthy across a restart, and Prometheus scrapes the lag',
    async () => {
      const { cluster } = suite;
      const directory = suite.directory('archive');
      const receiver = startReceive(cluster, [
        '--directory',
        directory,
        '--verbose',
        '--status-interval=1',
        '--metrics-address=127.0.0.1:0',
      ]);
      const url = await metricsUrl(receiver);
      const base = url.replace(/\/metrics$/, '');
      await receiver.waitForStderr(/starting log streaming at/);
      expect(await status(`${base}/healthz`)).toBe(200);
      expect(await status(`${base}/readyz`)).toBe(200);
      expect(await status(`${base}/nothing`)).toBe(404);

      // WAL flows: the byte counter grows, and a switched segment is counted complete.
      const before = value((await scrape(url)).samples, 'wal_receive_received_bytes_total');
      await generateWal(cluster, 'flow', 512 * 1024);
      await switchWal(cluster);
      await waitUntil(
        async () => value((await scrape(url)).samples, 'wal_receive_segments_completed_total') >= 1,
        { timeoutMs: 30_000, description: `a completed segment in the metrics:\n${receiver.stderr}` },
      );
      const { text, samples } = await scrape(url);
      execFileSync(PROMTOOL, ['check', 'metrics'], { input: text });
      expect(value(samples, 'wal_receive_received_bytes_total')).toBeGreaterThan(before + 512 * 1024);
      const server = value(samples, 'wal_receive_server_lsn');
      const flushed = value(samples, 'wal_receive_flushed_lsn');
      expect(value(samples, 'wal_receive_lag_bytes')).toBe(Math.max(0, server - flushed));
      expect(value(samples, 'wal_receive_received_lsn')).toBeGreaterThanOrEqual(flushed);
      expect(value(samples, 'wal_receive_connected')).toBe(1);
      expect(value(samples, 'wal_receive_timeline')).toBe(1);
      expect(text).toMatch(/^process_cpu_seconds_total \d/m);

      // A real Prometheus scrapes the endpoint; its query API knows the lag.
      const target = url.replace(/^http:\/\/([^/]+)\/metrics$/, '$1');
      await withPrometheus(suite.base, target, 'wal', async (prometheus) => {
        const answer = await queryUntil(
          prometheus,
          'wal_receive_lag_bytes{server="default"}',
          (answer) => answer.data.result.length > 0,
          'to have scraped the lag',
        );
        expect(answer.status).toBe('success');
        expect(answer.data.result[0]!.metric).toMatchObject({
          __name__: 'wal_receive_lag_bytes',
          server: 'default',
          job: 'wal',
        });
        expect(Number(answer.data.result[0]!.value[1])).toBeGreaterThanOrEqual(0);
      });

      // A restart: waiting to reconnect is healthy, not ready; streaming again, ready.
      await cluster.restart();
      await receiver.waitForStderr(/disconnected; waiting \d+(\.\d+)? seconds to try again/);
      expect(await status(`${base}/healthz`)).toBe(200);
      expect(await status(`${base}/readyz`)).toBe(503);
      const waiting = (await scrape(url)).samples;
      expect(value(waiting, 'wal_receive_connected')).toBe(0);
      expect(value(waiting, 'wal_receive_reconnects_total')).toBe(1);
      await waitUntil(async () => (await status(`${base}/readyz`)) === 200, {
        timeoutMs: 40_000,
        description: `streaming again after the restart:\n${receiver.stderr}`,
      });
      expect(await status(`${base}/healthz`)).toBe(200);

      receiver.signal('SIGTERM');
      const result = await receiver.wait(30_000);
      expect(result.code, describeRun(result)).toBe(0);
    },
    120_000,
  );

  it('refuses a bad address and a port in use with exit 1, before receiving anything', async () => {
    const { cluster } = suite;
    const directory = suite.directory('refused');
    const bad = await runReceive(cluster, ['-D', directory, '--metrics-address', 'localhost']);
    expect(bad.code, describeRun(bad)).toBe(1);
    expect(bad.stderr).toBe(
      'wal receive: error: invalid value "localhost" for option --metrics-address: expected HOST:PORT, [IPV6]:PORT or :PORT, with a port from 0 to 65535\n',
    );

    // The same refusal in JSON logs: the code, and the server label of the metrics.
    const json = await runReceive(cluster, [
      '-D',
      directory,
      '--log-format',
      'json',
      '--metrics-address=localhost',
    ]);
    expect(json.code, describeRun(json)).toBe(1);
    expect(JSON.parse(json.stderr)).toMatchObject({
      level: 'error',
      code: 'WAL_ERR_CLI_INVALID_VALUE',
      server: 'default',
      message: expect.stringContaining('--metrics-address'),
    });

    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const inUse = await runReceive(cluster, ['-D', directory, `--metrics-address=127.0.0.1:${port}`]);
      expect(inUse.code, describeRun(inUse)).toBe(1);
      expect(inUse.stderr).toBe(
        `wal receive: error: could not listen on 127.0.0.1:${port} for metrics: the address is already in use; choose another port or stop the process using it\n`,
      );
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
    expect(listFiles(directory)).toEqual([]);
  });
});
