import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  describeRun,
  killAll,
  openSession,
  type SqlSession,
  scalar,
  startReceive,
  suiteVersion,
  useSuiteServer,
  WAL_RECEIVE_APPLICATION_NAME,
  waitUntil,
} from './harness.js';

/**
 * --synchronous (spec §1.2, §3.3): `wal receive` fsyncs what it received and reports the flush
 * position at once, so a server that names it in synchronous_standby_names can count it as its
 * synchronous standby. While it runs, a COMMIT completes; while it is frozen (SIGSTOP), a COMMIT
 * waits for it (pg_stat_activity shows wait_event SyncRep: a state, not a duration); once it
 * continues (SIGCONT), the COMMIT completes.
 */

const VERSION = suiteVersion(18);

describe(`--synchronous on PostgreSQL ${VERSION}`, () => {
  // No WAL kept: the suite compares nothing with pg_wal.
  const suite = useSuiteServer({ version: VERSION, prefix: 'sync', table: 'durable', settings: {} });
  let session: SqlSession | undefined;

  beforeAll(async () => {
    const { cluster } = suite;
    // Set only now: with a synchronous standby named and absent, every commit would wait.
    // The receiver's fallback application_name contains a space, so it is quoted as a name.
    await cluster.sql(`ALTER SYSTEM SET synchronous_standby_names = '"${WAL_RECEIVE_APPLICATION_NAME}"'`);
    await cluster.sql('ALTER SYSTEM SET synchronous_commit = on');
    await cluster.sql('SELECT pg_reload_conf()');
    await waitUntil(
      async () =>
        (await scalar(cluster, "SELECT current_setting('synchronous_standby_names')")) ===
        `"${WAL_RECEIVE_APPLICATION_NAME}"`,
      { description: 'the reloaded synchronous_standby_names' },
    );
  });

  // Runs before the suite's afterAll stops the server (vitest runs after-hooks in reverse order).
  afterAll(async () => {
    await session?.end().catch(() => undefined);
    await killAll();
  });

  it('is the synchronous standby: commits complete while it runs and wait while it is stopped', async () => {
    const { cluster } = suite;
    const directory = suite.directory('sync_wal');
    const receiver = startReceive(cluster, ['--directory', directory, '--synchronous', '--verbose']);
    await waitUntil(
      async () =>
        (await scalar(
          cluster,
          `SELECT sync_state FROM pg_stat_replication WHERE application_name = '${WAL_RECEIVE_APPLICATION_NAME}'`,
        )) === 'sync',
      { description: `wal receive as the synchronous standby in pg_stat_replication:\n${receiver.stderr}` },
    );
    // A commit completes while the receiver runs (a hang here ends in the test's timeout).
    await cluster.sql("INSERT INTO durable VALUES (1, 'while running')");

    receiver.signal('SIGSTOP');
    session = await openSession(cluster);
    const pid = (await session.query('SELECT pg_backend_pid() AS pid')).rows[0]!.pid as number;
    let committed = false;
    const commit = session.query("INSERT INTO durable VALUES (2, 'while stopped')").then(() => {
      committed = true;
    });
    try {
      await waitUntil(
        async () =>
          (await scalar(cluster, `SELECT wait_event FROM pg_stat_activity WHERE pid = ${pid}`)) === 'SyncRep',
        { description: 'the COMMIT waiting for the stopped receiver (wait_event SyncRep)' },
      );
      // Still waiting: the receiver is the only synchronous standby and it is frozen.
      expect(committed).toBe(false);
      expect(await scalar(cluster, `SELECT state FROM pg_stat_activity WHERE pid = ${pid}`)).toBe('active');
    } finally {
      receiver.signal('SIGCONT');
    }
    await commit;
    expect(committed).toBe(true);
    expect(await scalar(cluster, "SELECT count(*) FROM durable WHERE payload = 'while stopped'")).toBe('1');

    receiver.signal('SIGINT');
    const result = await receiver.wait(30_000);
    expect(result.code, describeRun(result)).toBe(0);
  });
});
