import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  describeRun,
  flushLsn,
  lsnToText,
  MEGABYTE,
  matching,
  partialAgainstPgWal,
  runReceive,
  segmentStartOf,
  startStreamingReceiver,
  stracePath,
  suiteVersion,
  traceSystemCalls,
  useSuiteServer,
  waitForWritten,
} from './harness.js';

/**
 * Stopping and failing (spec §1.5-1.6): SIGINT and SIGTERM end a stream with exit 0 and
 * keep the .partial with everything received (the next run resumes from it), also while waiting
 * to reconnect; a missing directory, a wrong password and, with --no-loop, a server that goes
 * away end the program with exit 1 and a message that says what happened.
 */

const VERSION = suiteVersion(14);
const REPLICATOR = 'replicator';
const PASSWORD = 'correct horse';

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, 'g'))?.length ?? 0;
}

describe(`signals and errors on PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({
    version: VERSION,
    prefix: 'signals',
    table: 'signalled',
    users: [{ name: REPLICATOR, password: PASSWORD, replication: true }],
    hba: [
      `host replication ${REPLICATOR} 127.0.0.1/32 scram-sha-256`,
      'host all all 127.0.0.1/32 trust',
      'host replication all 127.0.0.1/32 trust',
      'local all all trust',
    ],
  });

  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s stops with exit 0 and keeps the .partial with what was received; the next run resumes from it',
    async (signal) => {
      const { cluster } = suite;
      const directory = suite.directory(`stop_${signal}`);
      await cluster.sql('SELECT pg_switch_wal()');
      const { receiver, partial } = await startStreamingReceiver(
        cluster,
        directory,
        ['--verbose', '--status-interval', '1', '-d', `application_name=e2e_${signal}`],
        { table: 'signalled', bytes: 200 * 1024 },
      );
      const target = await flushLsn(cluster);
      // The receiver has written everything up to `target` (reported as its write position).
      await waitForWritten(
        cluster,
        `e2e_${signal}`,
        target,
        `the receiver's write position at ${lsnToText(target)}`,
      );

      receiver.signal(signal);
      const result = await receiver.wait(30_000);
      expect(result.code, describeRun(result)).toBe(0);
      expect(result.signal).toBeNull();
      expect(result.stderr).toMatch(/received interrupt signal, exiting/);
      expect(matching(directory, /\.partial$/)).toEqual([partial]);
      const { length, differences } = partialAgainstPgWal(directory, partial, cluster.pgWalDir, target);
      expect(length).toBe(MEGABYTE);
      expect(differences).toEqual([]);

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
      const directory = suite.directory('fsync');
      const { receiver, partial } = await startStreamingReceiver(suite.cluster, directory, ['--verbose'], {
        table: 'signalled',
        bytes: 100 * 1024,
      });
      // No WAL is written from here on: the fsyncs strace sees are those of the stop.
      const traceFile = join(suite.base, 'fsync.strace');
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
    const directory = suite.directory('behind');
    const result = await runReceive(suite.cluster, [
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
    const missing = join(suite.base, 'does', 'not', 'exist');
    const result = await runReceive(suite.cluster, ['--directory', missing, '--no-loop']);
    expect(result.code, describeRun(result)).toBe(1);
    expect(result.stderr).toBe(
      `wal receive: error: could not open directory "${missing}": No such file or directory\n`,
    );
    expect(existsSync(missing)).toBe(false);
  });

  it('a wrong password: exit 1 at once with the server message, never retried', async () => {
    const { cluster } = suite;
    const directory = suite.directory('password');
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
    const { cluster } = suite;
    const directory = suite.directory('waiting');
    const { receiver, partial } = await startStreamingReceiver(cluster, directory, ['--verbose'], {
      table: 'signalled',
    });
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
    const { cluster } = suite;
    const directory = suite.directory('no_loop');
    const { receiver } = await startStreamingReceiver(cluster, directory, ['--verbose', '--no-loop'], {
      table: 'signalled',
    });
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
