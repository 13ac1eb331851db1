import { describe, expect, it } from 'vitest';
import {
  compareWithPgWal,
  describeRun,
  flushLsn,
  generateWal,
  insertLsn,
  listFiles,
  lsnToText,
  MEGABYTE,
  scalar,
  segmentStartOf,
  startStreamingReceiver,
  suiteVersion,
  switchWal,
  useSuiteServer,
  waitUntil,
  walFileNameOf,
} from './harness.js';

/**
 * A server restart and a dropped connection in the middle of a stream: the receiver
 * reports the disconnection, waits (pg_receivewal's 5 s; `wal receive` has no flag to shorten it),
 * reconnects, resumes from its .partial and continues without a gap: at the end every segment of
 * the range is there, complete, and equal to the server's pg_wal file.
 */

const VERSION = suiteVersion(14);

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, 'g'))?.length ?? 0;
}

describe(`reconnecting on PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'reconnect', table: 'flow' });

  it('continues with no gap after a server restart, pg_terminate_backend of its walsender and a crash', async () => {
    const { cluster } = suite;
    const directory = suite.directory('archive');
    await switchWal(cluster);
    const start = segmentStartOf(await flushLsn(cluster), MEGABYTE);
    // Five segments; the end is the last byte of the fifth, so the run ends without a .partial.
    const endLsn = start + BigInt(5 * MEGABYTE) - 1n;
    const { receiver } = await startStreamingReceiver(
      cluster,
      directory,
      ['--verbose', '--status-interval', '1', '--endpos', lsnToText(endLsn)],
      { table: 'flow' },
    );

    // Half a segment, then a fast restart in the middle of the segment.
    await generateWal(cluster, 'flow', MEGABYTE / 2);
    await cluster.restart();
    await receiver.waitForStderr(/disconnected; waiting \d+(\.\d+)? seconds to try again/);
    await generateWal(cluster, 'flow', MEGABYTE);
    await waitUntil(() => count(receiver.stderr, /starting log streaming at/) >= 2, {
      timeoutMs: 40_000,
      description: `a second "starting log streaming" after the restart:\n${receiver.stderr}`,
    });

    // The walsender is terminated while it streams.
    await waitUntil(
      async () =>
        (await scalar(
          cluster,
          "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'wal receive' AND state = 'streaming'",
        )) === '1',
      { description: 'the walsender of wal receive in pg_stat_replication' },
    );
    await generateWal(cluster, 'flow', MEGABYTE / 2);
    // Two steps: in one query the planner may call pg_terminate_backend on rows before filtering.
    const walsender = await scalar(
      cluster,
      "SELECT pid FROM pg_stat_replication WHERE application_name = 'wal receive'",
    );
    expect(walsender).not.toBeNull();
    expect(await scalar(cluster, `SELECT pg_terminate_backend(${walsender})`)).toBe('true');
    await generateWal(cluster, 'flow', MEGABYTE / 2);
    await waitUntil(() => count(receiver.stderr, /starting log streaming at/) >= 3, {
      timeoutMs: 40_000,
      description: `a third "starting log streaming" after pg_terminate_backend:\n${receiver.stderr}`,
    });

    // A crash: the walsender vanishes without ending the COPY; the server recovers and goes on.
    await generateWal(cluster, 'flow', MEGABYTE / 2);
    await cluster.shutdown('immediate');
    await cluster.start();
    await generateWal(cluster, 'flow', MEGABYTE / 4);
    await waitUntil(() => count(receiver.stderr, /starting log streaming at/) >= 4, {
      timeoutMs: 60_000,
      description: `a fourth "starting log streaming" after the crash:\n${receiver.stderr}`,
    });

    while ((await insertLsn(cluster)) <= endLsn + 64n * 1024n) await generateWal(cluster, 'flow', 256 * 1024);
    const result = await receiver.wait(40_000);
    expect(result.code, describeRun(result)).toBe(0);
    expect(count(result.stderr, /disconnected; waiting/)).toBeGreaterThanOrEqual(3);

    const expected = Array.from({ length: 5 }, (_, index) =>
      walFileNameOf(1, start + BigInt(index * MEGABYTE), MEGABYTE),
    );
    expect(listFiles(directory)).toEqual(expected);
    const { compared, differences } = compareWithPgWal(directory, cluster.pgWalDir);
    expect(differences).toEqual([]);
    expect(compared).toEqual(expected);
  }, 120_000);
});
