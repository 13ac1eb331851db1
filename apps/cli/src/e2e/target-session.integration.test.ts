import { describe, expect, it } from 'vitest';
import {
  clientToolsSkipReason,
  describeRun,
  runPgReceivewal,
  runReceive,
  scalar,
  startReceive,
  suiteVersion,
  useSuiteServer,
  waitUntil,
} from './harness.js';

/**
 * target_session_attrs in -d, over a primary and its standby: the session is chosen as libpq
 * chooses it, and a host that does not fit is refused with libpq's words (pg_receivewal 15 is the
 * oracle). The failover itself is tested in @wal/stream (failover.integration.test.ts).
 */

const VERSION = suiteVersion(18);
const skipReason = clientToolsSkipReason();

describe(`target_session_attrs on PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'target', table: 'targeted', standby: true });

  function both(attrs: string, application: string): string {
    const { cluster, standby } = suite;
    return (
      `host=127.0.0.1,127.0.0.1 port=${standby.port},${cluster.port} ` +
      `target_session_attrs=${attrs} application_name=${application}`
    );
  }

  it.each([
    ['primary', 'primary'],
    ['standby', 'standby'],
    ['read-write', 'primary'],
    ['prefer-standby', 'standby'],
  ] as const)('with target_session_attrs=%s streams from the %s', async (attrs, expected) => {
    const { cluster, standby } = suite;
    const application = `e2e_target_${attrs.replace('-', '_')}`;
    const receiver = startReceive(cluster, [
      '-D',
      suite.directory(application),
      '-d',
      both(attrs, application),
    ]);
    const server = expected === 'primary' ? cluster : standby;
    // pg_stat_replication lists a walsender from its start, before the receiver has its first
    // connection and traps signals: wait for streaming.
    await waitUntil(
      async () =>
        (await scalar(
          server,
          `SELECT count(*)::text FROM pg_stat_replication WHERE application_name = '${application}' AND state = 'streaming'`,
        )) === '1',
      { description: `${application} streaming from the ${expected}` },
    );
    receiver.signal('SIGINT');
    const result = await receiver.wait(30_000);
    expect(result.code, describeRun(result)).toBe(0);
  });

  it.skipIf(skipReason !== undefined)(
    'refuses a standby for primary with the same message as pg_receivewal, and exits 1',
    async () => {
      const { standby } = suite;
      const conninfo = `host=127.0.0.1 port=${standby.port} target_session_attrs=primary`;
      const ours = await runReceive(standby, ['-D', suite.directory('refused'), '-d', conninfo, '--no-loop']);
      const theirs = await runPgReceivewal(standby, [
        '-D',
        suite.directory('refused_pg'),
        '-d',
        conninfo,
        '--no-loop',
      ]);
      expect(ours.code, describeRun(ours)).toBe(1);
      expect(theirs.code, describeRun(theirs)).toBe(1);
      const reason = `connection to server at "127.0.0.1", port ${standby.port} failed: server is in hot standby mode`;
      expect(theirs.stderr).toContain(`error: ${reason}`);
      expect(ours.stderr).toContain(`error: ${reason}`);
    },
  );
});
