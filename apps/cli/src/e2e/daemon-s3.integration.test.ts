import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ScriptedS3, startScriptedS3 } from '@wal/fake-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  serverEntry,
  startDaemon,
  waitForWalsender,
  walsenderPid,
  writeDaemonConfig,
} from './daemon-harness.js';
import {
  compareWithPgWal,
  describeRun,
  flushLsn,
  generateWal,
  MEGABYTE,
  segmentStartOf,
  suiteVersion,
  switchWal,
  useSuiteServer,
  waitForFile,
  waitUntil,
  walFileNameOf,
} from './harness.js';
import { metricsUrl, PROMTOOL, parseSamples, scrapeText, serverSample } from './prometheus.js';

/**
 * `wal daemon` with a directory server and an `s3://` server (relative spool) on one real server
 * and the scripted S3 endpoint, its AWS configuration from the daemon's environment: both archive
 * a switched segment equal to pg_wal; `/metrics` has the upload gauges for the s3 server only and
 * passes promtool; SIGHUP changing the s3 server's `ack` restarts it alone.
 */

const VERSION = suiteVersion(18);
const TABLE = 'daemon_s3_rows';
const BUCKET = 'wal-daemon';
const haveTools = existsSync(PROMTOOL);
const requireTools = process.env.WAL_REQUIRE_CLIENT_TOOLS === '1';
const UPLOAD_GAUGES = [
  'wal_receive_upload_queued_files',
  'wal_receive_upload_queued_bytes',
  'wal_receive_uploaded_lsn',
];

describe(`wal daemon with object storage on PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'daemon-s3', table: TABLE });
  let s3: ScriptedS3;

  beforeAll(async () => {
    s3 = await startScriptedS3({ buckets: [BUCKET] });
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it.runIf(haveTools || requireTools)(
    'a directory server and an s3 server both archive; upload gauges for the s3 one only; SIGHUP on its ack restarts it alone',
    async () => {
      const { cluster } = suite;
      const local = suite.directory('local');
      suite.directory('spool');
      const config = join(suite.base, 'daemon.yaml');
      const servers = (ack: string) => [
        serverEntry(cluster, 'local', local, { 'status-interval': 1 }),
        serverEntry(cluster, 'cloud', `s3://${BUCKET}/cloud/`, {
          spool: 'spool',
          ack,
          'partial-upload-interval': 1,
          'status-interval': 1,
        }),
      ];
      writeDaemonConfig(config, servers('local'), ['metrics_address: 127.0.0.1:0']);
      const daemon = startDaemon(cluster, config, s3.env);
      const url = await metricsUrl(daemon);
      const localPid = await waitForWalsender(cluster, 'local');
      const cloudPid = await waitForWalsender(cluster, 'cloud');

      await generateWal(cluster, TABLE, 300 * 1024);
      await switchWal(cluster);
      const segmentStart = segmentStartOf((await flushLsn(cluster)) - 1n, MEGABYTE);
      const segment = walFileNameOf(1, segmentStart, MEGABYTE);
      await waitForFile(local, new RegExp(`^${segment}$`));
      await waitUntil(() => s3.objects.has(`cloud/${segment}`), {
        timeoutMs: 60_000,
        description: `cloud/${segment} in the bucket:\n${daemon.stderr}`,
      });
      const downloaded = suite.directory('downloaded');
      for (const [key, object] of s3.objects) {
        if (key.startsWith('cloud/'))
          writeFileSync(join(downloaded, key.slice('cloud/'.length)), object.body);
      }
      for (const directory of [local, downloaded]) {
        const { compared, differences } = compareWithPgWal(directory, cluster.pgWalDir);
        expect(differences).toEqual([]);
        expect(compared).toContain(segment);
      }

      const segmentEnd = Number(segmentStart) + MEGABYTE;
      await waitUntil(
        async () =>
          serverSample(parseSamples(await scrapeText(url)), 'wal_receive_uploaded_lsn', 'cloud') >=
          segmentEnd,
        { timeoutMs: 60_000, description: `the cloud server's uploaded position:\n${daemon.stderr}` },
      );
      const text = await scrapeText(url);
      execFileSync(PROMTOOL, ['check', 'metrics'], { input: text });
      const samples = parseSamples(text);
      expect(serverSample(samples, 'wal_receive_flushed_lsn', 'local')).toBeGreaterThanOrEqual(segmentEnd);
      for (const gauge of UPLOAD_GAUGES) {
        expect(samples.has(`${gauge}{server="cloud"}`), gauge).toBe(true);
        expect(samples.has(`${gauge}{server="local"}`), gauge).toBe(false);
      }

      writeDaemonConfig(config, servers('remote'), ['metrics_address: 127.0.0.1:0']);
      daemon.signal('SIGHUP');
      await waitUntil(async () => ((await walsenderPid(cluster, 'cloud')) ?? cloudPid) !== cloudPid, {
        timeoutMs: 30_000,
        description: `a new walsender for the cloud server:\n${daemon.stderr}`,
      });
      expect(await walsenderPid(cluster, 'local')).toBe(localPid);

      daemon.signal('SIGTERM');
      const result = await daemon.wait(60_000);
      expect(result.code, describeRun(result)).toBe(0);
      expect(result.stderr).not.toMatch(/WAL_ERR/);
    },
    180_000,
  );

  // The directory server comes first (lines 2-4), the s3 server's entry from line 5.
  it.each([
    ['no spool', () => ({}), 7, 'server "cloud" key "directory": -D s3://… needs --spool=DIR'],
    [
      'a bad URL',
      (spool: string) => ({ directory: 's3://Wal/cloud', spool }),
      7,
      'server "cloud" key "directory": "s3://Wal/cloud" is not a valid S3 location',
    ],
    [
      "another server's directory as spool",
      (_spool: string, local: string) => ({ spool: local }),
      5,
      'server "cloud" key "spool": ',
    ],
  ])('refuses an s3 server with %s before anything starts, exit 1', async (kind, keys, line, message) => {
    const { cluster } = suite;
    const name = kind.replace(/\W+/g, '-');
    const local = suite.directory(`bad-local-${name}`);
    const spool = suite.directory(`bad-spool-${name}`);
    const config = join(suite.base, `bad-${name}.yaml`);
    writeDaemonConfig(config, [
      serverEntry(cluster, 'local', local),
      { name: 'cloud', conninfo: 'host=127.0.0.1', directory: `s3://${BUCKET}/never`, ...keys(spool, local) },
    ]);
    const result = await startDaemon(cluster, config, s3.env).wait(30_000);
    expect(result.code, describeRun(result)).toBe(1);
    const first = result.stderr.split('\n')[0];
    expect(first).toContain(`wal daemon: error: ${config}:${line}: ${message}`);
    expect(result.stderr).not.toMatch(/starting|started/);
    expect(await walsenderPid(cluster, 'local')).toBeUndefined();
    expect([...s3.objects.keys()].filter((key) => key.startsWith('never/'))).toEqual([]);
  });
});
