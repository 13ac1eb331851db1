import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ScriptedS3, startScriptedS3 } from '@wal/fake-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  daemonMetricsUrl,
  PROMTOOL,
  parseSamples,
  scrapeText,
  serverEntry,
  serverSample,
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
      const url = await daemonMetricsUrl(daemon);
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
});
