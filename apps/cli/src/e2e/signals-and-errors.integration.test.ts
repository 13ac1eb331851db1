import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Cluster, startCluster } from '@wal/pg-cluster';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  comparePartialWithPgWal,
  createTable,
  describeRun,
  flushLsn,
  generateWal,
  killAll,
  lsnFromText,
  lsnToText,
  MEGABYTE,
  matching,
  removeDirectory,
  runReceive,
  scalar,
  segmentStartOf,
  startReceive,
  stracePath,
  suiteVersion,
  temporaryDirectory,
  traceSystemCalls,
  waitForFile,
  waitUntil,
} from './harness.js';

/**
 * Stopping and failing (spec §1.5-1.6, issue 3): SIGINT and SIGTERM end a stream with exit 0 and
 * keep the .partial with everything received (the next run resumes from it), also while waiting
 * to reconnect; a missing directory, a wrong password and, with --no-loop, a server that goes
 * away end the program with exit 1 and a message that says what happened.
 */

const VERSION = suiteVersion(14);
const REPLICATOR = 'replicator';
const PASSWORD = 'correct horse';

afterEach(async () => {
  await killAll();
});

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, 'g'))?.length ?? 0;
}

describe(`signals and errors on PostgreSQL ${VERSION}`, () => {
  let cluster: Cluster;
  let base: string;

  beforeAll(async () => {
    cluster = await startCluster({
      version: VERSION,
      segmentSizeMb: 1,
      settings: { wal_keep_size: '256MB' },
      users: [{ name: REPLICATOR, password: PASSWORD, replication: true }],
      hba: [
        `host replication ${REPLICATOR} 127.0.0.1/32 scram-sha-256`,
        'host all all 127.0.0.1/32 trust',
        'host replication all 127.0.0.1/32 trust',
        'local all all trust',
      ],
    });
    base = temporaryDirectory('signals');
    await createTable(cluster, 'signalled');
  });

  afterAll(async () => {
    await cluster?.stop();
    removeDirectory(base);
  });

  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s stops with exit 0 and keeps the .partial with what was received; the next run resumes from it',
    async (signal) => {
      const directory = join(base, `stop_${signal}`);
      mkdirSync(directory, { mode: 0o700 });
      await cluster.sql('SELECT pg_switch_wal()');
      const receiver = startReceive(cluster, [
        '--directory',
        directory,
        '--verbose',
        '--status-interval',
        '1',
        '-d',
        `application_name=e2e_${signal}`,
      ]);
      await receiver.waitForStderr(/starting log streaming at/);
      await generateWal(cluster, 'signalled', 200 * 1024);
      const partial = await waitForFile(directory, /\.partial$/);
      const target = await flushLsn(cluster);
      // The receiver has written everything up to `target` (reported as its write position).
      await waitUntil(
        async () => {
          const written = await scalar(
            cluster,
            `SELECT write_lsn::text FROM pg_stat_replication WHERE application_name = 'e2e_${signal}'`,
          );
          return written !== null && lsnFromText(written) >= target;
        },
        { description: `the receiver's write position at ${lsnToText(target)}` },
      );

      receiver.signal(signal);
      const result = await receiver.wait(30_000);
      expect(result.code, describeRun(result)).toBe(0);
      expect(result.signal).toBeNull();
      expect(result.stderr).toMatch(/received interrupt signal, exiting/);
      expect(matching(directory, /\.partial$/)).toEqual([partial]);
      const contents = readFileSync(join(directory, partial));
      expect(contents.length).toBe(MEGABYTE);
      expect(
        comparePartialWithPgWal(
          contents,
          join(cluster.pgWalDir, partial.slice(0, 24)),
          Number(target % BigInt(MEGABYTE)),
        ),
      ).toEqual([]);

      // The next run starts again at the beginning of the kept .partial's segment (a row after the
      // end position, so that the run has something past it to receive).
      await cluster.sql(`INSERT INTO signalled VALUES (0, '${signal}')`);
      const segmentStart = lsnToText(segmentStartOf(target, MEGABYTE));
      const resumed = await runReceive(cluster, [
        '--directory',
        directory,
        '--verbose',
        '--endpos',
        lsnToText(target),
        '--no-loop',
      ]);
      expect(resumed.code, describeRun(resumed)).toBe(0);
      expect(resumed.stderr).toMatch(
        new RegExp(`starting log streaming at ${segmentStart} \\(timeline 1\\)`),
      );
    },
  );

  it.skipIf(stracePath() === undefined)(
    'SIGTERM: the .partial and its directory are fsynced before the exit (seen with strace)',
    async () => {
      const directory = join(base, 'fsync');
      mkdirSync(directory, { mode: 0o700 });
      const receiver = startReceive(cluster, ['--directory', directory, '--verbose']);
      await receiver.waitForStderr(/starting log streaming at/);
      await generateWal(cluster, 'signalled', 100 * 1024);
      const partial = await waitForFile(directory, /\.partial$/);
      // No WAL is written from here on: the fsyncs strace sees are those of the stop.
      const traceFile = join(base, 'fsync.strace');
      const tracer = await traceSystemCalls(receiver.pid, ['fsync', 'fdatasync'], traceFile);
      receiver.signal('SIGTERM');
      const result = await receiver.wait(30_000);
      await tracer.wait(10_000);
      expect(result.code, describeRun(result)).toBe(0);
      const trace = readFileSync(traceFile, 'utf8');
      const synced = [...trace.matchAll(/f(?:data)?sync\(\d+<([^>]*)>\) = 0/g)].map((match) => match[1]);
      expect(synced, trace).toContain(join(directory, partial));
      expect(synced, trace).toContain(directory);
    },
  );

  it('an end position behind the start point ends at once with exit 0, writing nothing (spec §1.2)', async () => {
    const directory = join(base, 'behind');
    mkdirSync(directory, { mode: 0o700 });
    const result = await runReceive(cluster, [
      '--directory',
      directory,
      '--endpos',
      '0/1',
      '--no-loop',
      '--verbose',
    ]);
    expect(result.code, describeRun(result)).toBe(0);
    expect(matching(directory, /./)).toEqual([]);
  });

  it('a missing directory: exit 1 with its name, before connecting, and it is not created', async () => {
    const missing = join(base, 'does', 'not', 'exist');
    const result = await runReceive(cluster, ['--directory', missing, '--no-loop']);
    expect(result.code, describeRun(result)).toBe(1);
    expect(result.stderr).toBe(
      `wal receive: error: could not open directory "${missing}": No such file or directory\n`,
    );
    expect(existsSync(missing)).toBe(false);
  });

  it('a wrong password: exit 1 at once with the server message, never retried', async () => {
    const directory = join(base, 'password');
    mkdirSync(directory, { mode: 0o700 });
    const wrong = await runReceive(cluster, ['--directory', directory, '-U', REPLICATOR, '-w'], {
      env: { PGPASSWORD: 'wrong password' },
    });
    expect(wrong.code, describeRun(wrong)).toBe(1);
    expect(wrong.stderr).toMatch(
      /^wal receive: error: .*password authentication failed for user "replicator"/m,
    );
    expect(count(wrong.stderr, /password authentication failed/)).toBe(1);
    expect(wrong.stderr).not.toMatch(/waiting|try again/);
    expect(wrong.stderr).not.toContain('wrong password');
    expect(matching(directory, /./)).toEqual([]);

    // The right one streams (SCRAM end to end).
    await cluster.sql('SELECT pg_switch_wal()');
    const endLsn = lsnToText(await flushLsn(cluster));
    await cluster.sql("INSERT INTO signalled VALUES (1, 'x')");
    const right = await runReceive(
      cluster,
      ['--directory', directory, '-U', REPLICATOR, '-w', '--endpos', endLsn, '--no-loop'],
      { env: { PGPASSWORD: PASSWORD } },
    );
    expect(right.code, describeRun(right)).toBe(0);
    expect(matching(directory, /\.partial$/)).toHaveLength(1);
  });

  it('SIGTERM while waiting to reconnect: exit 0, the .partial kept', async () => {
    const directory = join(base, 'waiting');
    mkdirSync(directory, { mode: 0o700 });
    const receiver = startReceive(cluster, ['--directory', directory, '--verbose']);
    await receiver.waitForStderr(/starting log streaming at/);
    await generateWal(cluster, 'signalled', 1024);
    const partial = await waitForFile(directory, /\.partial$/);
    await cluster.shutdown('fast');
    try {
      await receiver.waitForStderr(/disconnected; waiting \d+(\.\d+)? seconds to try again/);
      receiver.signal('SIGTERM');
      const result = await receiver.wait(30_000);
      expect(result.code, describeRun(result)).toBe(0);
      expect(matching(directory, /\.partial$/)).toEqual([partial]);
    } finally {
      await cluster.start();
    }
  });

  it('--no-loop: the server going away ends the run with exit 1 and "disconnected"', async () => {
    const directory = join(base, 'no_loop');
    mkdirSync(directory, { mode: 0o700 });
    const receiver = startReceive(cluster, ['--directory', directory, '--verbose', '--no-loop']);
    await receiver.waitForStderr(/starting log streaming at/);
    await generateWal(cluster, 'signalled', 1024);
    await waitForFile(directory, /\.partial$/);
    await cluster.shutdown('fast');
    try {
      const result = await receiver.wait(30_000);
      expect(result.code, describeRun(result)).toBe(1);
      expect(result.stderr).toMatch(/wal receive: error: disconnected\n$/);
      expect(result.stderr).not.toMatch(/waiting \d+ seconds/);
      // What was received stays as .partial.
      expect(matching(directory, /\.partial$/)).toHaveLength(1);
    } finally {
      await cluster.start();
    }
  });
});
