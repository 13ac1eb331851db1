import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type ScriptedS3, startScriptedS3 } from '@wal/fake-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compareDecompressedWithPgWal,
  describeRun,
  flushLsn,
  generateWal,
  insertLsn,
  listFiles,
  lsnFromText,
  lsnToText,
  MEGABYTE,
  type RunningProcess,
  runReceive,
  scalar,
  seededRandom,
  segmentStartOf,
  sleep,
  startReceive,
  suiteVersion,
  switchWal,
  useSuiteServer,
  waitUntil,
  walFileNameOf,
} from './harness.js';

/**
 * `wal receive -D s3://… --spool DIR` through the built CLI, against a real server and the
 * scripted S3 endpoint of @wal/fake-s3 (it enforces If-None-Match, as AWS S3 does). After kill -9
 * at pseudo-random moments and a last run to --endpos, the bucket holds exactly the segments of
 * the range, each equal to the server's pg_wal file, and nothing else (no `.partial` object of a
 * completed segment); the spool is empty. WAL_E2E_SEED repeats a failing run.
 */

const VERSION = suiteVersion(18);
const SEED = Number(process.env.WAL_E2E_SEED ?? 20261207);
const SEGMENTS = 5;
const PREFIX = 'archive';

describe(`wal receive -D s3://… on PostgreSQL ${VERSION} (seed ${SEED})`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 's3', table: 'churn' });
  let s3: ScriptedS3;
  let runs = 0;

  beforeAll(async () => {
    s3 = await startScriptedS3({ buckets: ['wal-archive'] });
  });
  afterAll(async () => {
    await s3?.stop();
  });

  /** The objects under a prefix, with the prefix taken off. */
  function objectsUnder(prefix: string): Map<string, Buffer> {
    const objects = new Map<string, Buffer>();
    for (const [key, object] of s3.objects) {
      if (key.startsWith(`${prefix}/`)) objects.set(key.slice(prefix.length + 1), object.body);
    }
    return objects;
  }

  it.each([
    { label: 'none', compress: [] as string[], suffix: '', kills: 8 },
    { label: 'gzip', compress: ['--compress', 'gzip'], suffix: '.gz', kills: 4 },
  ])(
    '-Z $label: after $kills SIGKILLs and a resume, the bucket holds every segment equal to pg_wal and nothing else',
    async ({ compress, suffix, kills }) => {
      const random = seededRandom(SEED + kills);
      const { cluster } = suite;
      runs += 1;
      const prefix = `${PREFIX}-${runs}`;
      const spool = suite.directory(`spool-${runs}`);
      const args = [
        '--directory',
        `s3://wal-archive/${prefix}`,
        '--spool',
        spool,
        '--partial-upload-interval',
        '1',
        ...compress,
        '--verbose',
      ];
      const env = s3.env;
      await switchWal(cluster);
      const start = segmentStartOf(await flushLsn(cluster), MEGABYTE);
      const endLsn = start + BigInt(SEGMENTS * MEGABYTE) - 1n;

      let current: RunningProcess = startReceive(cluster, args, { env });
      await current.waitForStderr(/starting log streaming at/);
      const killingCap = endLsn - BigInt(2 * MEGABYTE);
      let killing = true;
      const generator = (async () => {
        while (killing && (await insertLsn(cluster)) < killingCap) {
          await generateWal(cluster, 'churn', 96 * 1024);
          await sleep(200);
        }
      })();
      try {
        for (let kill = 0; kill < kills; kill++) {
          await sleep(200 + Math.floor(random() * 1200));
          const outcome = await current.killHard();
          expect(outcome.signal, describeRun(outcome)).toBe('SIGKILL');
          current = startReceive(cluster, args, { env });
          if (random() < 0.3) continue;
          await current.waitForStderr(/starting log streaming/);
        }
      } finally {
        killing = false;
        await generator;
      }
      await current.killHard();
      while ((await insertLsn(cluster)) <= endLsn + 64n * 1024n)
        await generateWal(cluster, 'churn', 256 * 1024);

      const final = await runReceive(cluster, [...args, '--endpos', lsnToText(endLsn), '--no-loop'], { env });
      expect(final.code, describeRun(final)).toBe(0);

      const expected = Array.from(
        { length: SEGMENTS },
        (_, index) => `${walFileNameOf(1, start + BigInt(index * MEGABYTE), MEGABYTE)}${suffix}`,
      );
      const objects = objectsUnder(prefix);
      expect([...objects.keys()].sort()).toEqual(expected);
      expect(listFiles(spool)).toEqual([]);
      // The objects, written out as an archive directory, against pg_wal.
      const downloaded = suite.directory(`downloaded-${runs}`);
      for (const [name, body] of objects) writeFileSync(join(downloaded, name), body);
      const { compared, differences } = compareDecompressedWithPgWal(downloaded, cluster.pgWalDir);
      expect(differences).toEqual([]);
      expect(compared).toEqual(expected.map((name) => name.replace(suffix, '')));
      if (suffix === '.gz') expect(gunzipSync(objects.get(expected[0]!)!).length).toBe(MEGABYTE);
    },
    180_000,
  );

  it('refuses -D s3://… without --spool, a bad URL and a missing spool, before connecting', async () => {
    const { cluster } = suite;
    const noSpool = await runReceive(cluster, ['-D', 's3://wal-archive/x'], { env: s3.env });
    expect(noSpool.code).toBe(1);
    expect(noSpool.stderr).toContain('-D s3://… needs --spool=DIR');
    const spool = suite.directory('spool-refusals');
    const badUrl = await runReceive(cluster, ['-D', 's3://Bad_Bucket/x', '--spool', spool], { env: s3.env });
    expect(badUrl.code).toBe(1);
    expect(badUrl.stderr).toContain('is not a valid S3 location');
    const secret = await runReceive(cluster, ['-D', 's3://key:hunter2@bucket/x', '--spool', spool], {
      env: s3.env,
    });
    expect(secret.code).toBe(1);
    expect(secret.stderr).not.toContain('hunter2');
    const missing = await runReceive(cluster, ['-D', 's3://wal-archive/x', '--spool', join(spool, 'nope')], {
      env: s3.env,
    });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/could not open directory ".*nope": No such file or directory/);
  });

  /**
   * `wal receive -D s3://wal-archive/LABEL-N --endpos` for the next `segments` whole segments, once
   * it streams.
   */
  async function receiveSegments(label: string, segments: number) {
    const { cluster } = suite;
    runs += 1;
    const prefix = `${label}-${runs}`;
    const spool = suite.directory(`spool-${runs}`);
    await switchWal(cluster);
    const start = segmentStartOf(await flushLsn(cluster), MEGABYTE);
    const endLsn = start + BigInt(segments * MEGABYTE) - 1n;
    const running = startReceive(
      cluster,
      [
        '-D',
        `s3://wal-archive/${prefix}`,
        '--spool',
        spool,
        '--endpos',
        lsnToText(endLsn),
        '--no-loop',
        '-v',
      ],
      { env: s3.env },
    );
    await running.waitForStderr(/starting log streaming/);
    return { prefix, spool, start, endLsn, running };
  }

  /** WAL past `endLsn`, so a run to that end position completes. */
  async function writePast(endLsn: bigint): Promise<void> {
    while ((await insertLsn(suite.cluster)) <= endLsn + 64n * 1024n)
      await generateWal(suite.cluster, 'churn', 256 * 1024);
  }

  it('a conflicting object is reported with its code and never overwritten; exit 1', async () => {
    const { prefix, spool, start, endLsn, running } = await receiveSegments('conflict', 1);
    const name = walFileNameOf(1, start, MEGABYTE);
    // Another archiver stores that segment first, with other content.
    const other = Buffer.alloc(MEGABYTE, 7);
    s3.seed(`${prefix}/${name}`, other);
    await writePast(endLsn);
    const result = await running.wait(45_000);
    expect(result.code, describeRun(result)).toBe(1);
    expect(result.stderr).toContain('WAL_ERR_S3_CONFLICT');
    expect(result.stderr).toContain('already exists with other content');
    expect(s3.objects.get(`${prefix}/${name}`)?.body.equals(other)).toBe(true);
    // The spool keeps the segment.
    expect(listFiles(spool)).toContain(name);
  });

  it('503 SlowDown and connection resets are retried: the run ends with every segment stored', async () => {
    s3.fail({ operation: 'PUT', times: 2, fault: { kind: 'error', status: 503, code: 'SlowDown' } });
    s3.fail({ operation: 'PUT', times: 1, fault: { kind: 'reset', afterBytes: 1000 } });
    const { prefix, spool, start, endLsn, running } = await receiveSegments('faults', 2);
    await writePast(endLsn);
    const result = await running.wait(60_000);
    expect(result.code, describeRun(result)).toBe(0);
    expect(s3.pendingFaults).toBe(0);
    expect([...objectsUnder(prefix).keys()].sort()).toEqual([
      walFileNameOf(1, start, MEGABYTE),
      walFileNameOf(1, start + BigInt(MEGABYTE), MEGABYTE),
    ]);
    expect(listFiles(spool)).toEqual([]);
  });

  it('--ack remote: the slot stays where the store is complete while it is down, then follows it', async () => {
    const { cluster } = suite;
    runs += 1;
    const slot = `s3_${runs}`;
    const spool = suite.directory(`spool-${runs}`);
    await cluster.sql(`SELECT pg_create_physical_replication_slot('${slot}', true)`);
    const restartLsn = async () =>
      lsnFromText(
        (await scalar(
          cluster,
          `SELECT restart_lsn::text FROM pg_replication_slots WHERE slot_name = '${slot}'`,
        ))!,
      );
    const flushReported = async () =>
      lsnFromText(
        (await scalar(
          cluster,
          `SELECT flush_lsn::text FROM pg_stat_replication WHERE application_name = 'wal receive'`,
        )) ?? '0/0',
      );
    const receiver = startReceive(
      cluster,
      [
        ...['-D', `s3://wal-archive/ack-${runs}`, '--spool', spool, '--slot', slot, '--ack', 'remote'],
        ...['--partial-upload-interval', '1', '--status-interval', '1', '-v'],
      ],
      { env: s3.env },
    );
    await receiver.waitForStderr(/starting log streaming/);
    await generateWal(cluster, 'churn', 2 * MEGABYTE);
    const caughtUp = await flushLsn(cluster);
    await waitUntil(async () => (await restartLsn()) >= caughtUp, {
      description: 'the slot to reach the WAL the store has',
      timeoutMs: 60_000,
    });

    await s3.down('refuse');
    await sleep(1500);
    const held = await restartLsn();
    await generateWal(cluster, 'churn', 3 * MEGABYTE);
    const target = await flushLsn(cluster);
    await sleep(5000);
    expect(await restartLsn()).toBe(held);
    expect(await flushReported()).toBeLessThanOrEqual(held);
    expect(target).toBeGreaterThan(held + BigInt(2 * MEGABYTE));

    await s3.up();
    await waitUntil(async () => (await restartLsn()) >= target, {
      description: 'the slot to follow the store once it is back',
      timeoutMs: 90_000,
    });
    receiver.signal('SIGINT');
    const result = await receiver.wait(60_000);
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stderr).toMatch(/WAL_ERR_S3_UNAVAILABLE|trying again/);
  }, 180_000);
});
