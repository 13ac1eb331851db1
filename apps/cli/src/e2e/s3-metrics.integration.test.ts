import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type RunningS3rver, type ScriptedS3, startS3rver, startScriptedS3 } from '@wal/fake-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeRun,
  flushLsn,
  generateWal,
  MEGABYTE,
  type RunningProcess,
  segmentStartOf,
  startReceive,
  suiteVersion,
  switchWal,
  useSuiteServer,
  waitUntil,
} from './harness.js';
import { PROMTOOL, parseSamples, scrapeText, serverSample } from './prometheus.js';

/**
 * `wal receive -D s3://… --spool DIR --metrics-address`: the built CLI against a real server. With
 * s3rver, `/metrics` passes `promtool check metrics` and the confirmed position
 * (`wal_receive_uploaded_lsn`) reaches the end of a switched segment with nothing left queued; with
 * the scripted endpoint down, completed segments queue up (`wal_receive_upload_queued_files` > 0)
 * and the queue drains to 0 once it is up again.
 */

const VERSION = suiteVersion(18);
const required = process.env.WAL_REQUIRE_CLIENT_TOOLS === '1';
const haveTools = existsSync(PROMTOOL);
const BUCKET = 'wal-metrics';

/** The metrics URL the receiver printed (`serving metrics at …`). */
async function metricsUrl(receiver: RunningProcess): Promise<string> {
  await receiver.waitForStderr(/serving metrics at http:\/\/\S+\/metrics/);
  return /serving metrics at (http:\/\/\S+\/metrics)/.exec(receiver.stderr)![1]!;
}

async function sample(url: string, name: string): Promise<number> {
  return serverSample(parseSamples(await scrapeText(url)), name, 'default');
}

describe(`wal receive -D s3://… --metrics-address on PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 's3-metrics', table: 'flow' });
  let s3rver: RunningS3rver;
  let scripted: ScriptedS3;

  beforeAll(async () => {
    s3rver = await startS3rver({ buckets: [BUCKET] });
    scripted = await startScriptedS3({ buckets: [BUCKET] });
  });
  afterAll(async () => {
    await s3rver?.stop();
    await scripted?.stop();
  });

  function receive(prefix: string, env: Record<string, string>): RunningProcess {
    return startReceive(
      suite.cluster,
      [
        ...['-D', `s3://${BUCKET}/${prefix}`, '--spool', suite.directory(`spool-${prefix}`)],
        ...['--metrics-address=127.0.0.1:0', '--status-interval=1', '--verbose'],
      ],
      { env },
    );
  }

  it.runIf(haveTools || required)(
    'promtool accepts /metrics; the uploaded position reaches the end of a switched segment',
    async () => {
      const { cluster } = suite;
      const receiver = receive('s3rver', s3rver.env);
      const url = await metricsUrl(receiver);
      await receiver.waitForStderr(/starting log streaming at/);
      await generateWal(cluster, 'flow', 300 * 1024);
      await switchWal(cluster);
      const segmentEnd = segmentStartOf((await flushLsn(cluster)) - 1n, MEGABYTE) + BigInt(MEGABYTE);
      await waitUntil(async () => (await sample(url, 'wal_receive_uploaded_lsn')) >= Number(segmentEnd), {
        timeoutMs: 60_000,
        description: `wal_receive_uploaded_lsn to reach ${segmentEnd}:\n${receiver.stderr}`,
      });
      const text = await scrapeText(url);
      execFileSync(PROMTOOL, ['check', 'metrics'], { input: text });
      const samples = parseSamples(text);
      expect(serverSample(samples, 'wal_receive_upload_queued_files', 'default')).toBe(0);
      expect(serverSample(samples, 'wal_receive_upload_queued_bytes', 'default')).toBe(0);
      expect(serverSample(samples, 'wal_receive_uploaded_lsn', 'default')).toBeLessThanOrEqual(
        serverSample(samples, 'wal_receive_flushed_lsn', 'default'),
      );
      receiver.signal('SIGINT');
      const result = await receiver.wait(60_000);
      expect(result.code, describeRun(result)).toBe(0);
    },
    120_000,
  );

  it('while the store is down the upload queue grows; once it is up the queue drains to 0', async () => {
    const { cluster } = suite;
    const receiver = receive('outage', scripted.env);
    const url = await metricsUrl(receiver);
    await receiver.waitForStderr(/starting log streaming at/);
    expect(await sample(url, 'wal_receive_upload_queued_files')).toBe(0);

    await scripted.down('refuse');
    await generateWal(cluster, 'flow', 300 * 1024);
    await switchWal(cluster);
    const switched = segmentStartOf((await flushLsn(cluster)) - 1n, MEGABYTE) + BigInt(MEGABYTE);
    await waitUntil(async () => (await sample(url, 'wal_receive_upload_queued_files')) > 0, {
      timeoutMs: 60_000,
      description: `a queued upload while the store is down:\n${receiver.stderr}`,
    });
    expect(await sample(url, 'wal_receive_upload_queued_bytes')).toBeGreaterThan(0);
    expect(await sample(url, 'wal_receive_uploaded_lsn')).toBeLessThan(Number(switched));

    await scripted.up();
    await waitUntil(async () => (await sample(url, 'wal_receive_upload_queued_files')) === 0, {
      timeoutMs: 90_000,
      description: `the upload queue to drain once the store is back:\n${receiver.stderr}`,
    });
    expect(await sample(url, 'wal_receive_upload_queued_bytes')).toBe(0);
    expect(await sample(url, 'wal_receive_uploaded_lsn')).toBeGreaterThanOrEqual(Number(switched));
    receiver.signal('SIGINT');
    const result = await receiver.wait(60_000);
    expect(result.code, describeRun(result)).toBe(0);
  }, 180_000);
});
