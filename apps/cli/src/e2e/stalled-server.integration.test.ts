import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster } from '@wal/pg-cluster';
import { describe, expect, it } from 'vitest';
import {
  describeRun,
  generateWal,
  matching,
  type RunningProcess,
  scalar,
  startStreamingReceiver,
  suiteVersion,
  useSuiteServer,
  waitUntil,
} from './harness.js';

/**
 * A server that stalls while the receiver reconnects (issue 11): its postmaster is stopped with
 * SIGSTOP, so the kernel still accepts the connection but nobody answers the startup packet. No
 * connect_timeout is set (the suite's environment has no PG* variables but the target's). SIGTERM
 * must still end the receiver as a stop anywhere else does, and --receive-timeout must end the
 * attempt and retry it. The postmaster gets SIGCONT in every case.
 */

const VERSION = suiteVersion(18);

function postmasterPid(cluster: Cluster): number {
  return Number(readFileSync(join(cluster.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, 'g'))?.length ?? 0;
}

describe(`a server stalled during a reconnect, on PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'stalled', table: 'stalled' });

  /** Ends the receiver's walsender and stops the postmaster before the receiver comes back. */
  async function stallReconnect(receiver: RunningProcess, trace: string): Promise<() => void> {
    const { cluster } = suite;
    const walsender = await scalar(
      cluster,
      "SELECT pid FROM pg_stat_replication WHERE application_name = 'wal receive'",
    );
    expect(walsender).not.toBeNull();
    expect(await scalar(cluster, `SELECT pg_terminate_backend(${walsender})`)).toBe('true');
    await receiver.waitForStderr(/disconnected; waiting \d+ seconds to try again/);
    const pid = postmasterPid(cluster);
    const traced = readFileSync(trace, 'utf8').length;
    process.kill(pid, 'SIGSTOP');
    const resume = (): void => {
      process.kill(pid, 'SIGCONT');
    };
    try {
      // The reconnect has sent its first message (SSLRequest or StartupMessage), which nobody reads.
      await waitUntil(() => /^F\t/m.test(readFileSync(trace, 'utf8').slice(traced)), {
        timeoutMs: 30_000,
        description: 'the reconnect to send its first message',
      });
    } catch (error) {
      resume();
      throw error;
    }
    return resume;
  }

  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s while the reconnect waits: exit 0, the .partial kept',
    async (signal) => {
      const directory = suite.directory(`signal_${signal}`);
      const trace = join(suite.base, `trace_${signal}`);
      const { receiver, partial } = await startStreamingReceiver(
        suite.cluster,
        directory,
        ['--verbose', `--trace=${trace}`],
        { table: 'stalled' },
      );
      const resume = await stallReconnect(receiver, trace);
      try {
        receiver.signal(signal);
        const result = await receiver.wait(30_000);
        expect(result.code, describeRun(result)).toBe(0);
        expect(result.stderr).toMatch(/wal receive: received interrupt signal, exiting\n$/);
        expect(matching(directory, /\.partial$/)).toEqual([partial]);
      } finally {
        resume();
      }
    },
    90_000,
  );

  it('--receive-timeout ends the stalled attempt and retries; streaming resumes once the server does', async () => {
    const directory = suite.directory('receive_timeout');
    const trace = join(suite.base, 'trace_timeout');
    const { receiver } = await startStreamingReceiver(
      suite.cluster,
      directory,
      ['--verbose', `--trace=${trace}`, '--receive-timeout=2'],
      { table: 'stalled' },
    );
    const resume = await stallReconnect(receiver, trace);
    try {
      await receiver.waitForStderr(
        /wal receive: error: the server did not complete the connection within 2000 ms\nwal receive: disconnected; waiting \d+ seconds to try again\n/,
      );
    } finally {
      resume();
    }
    await generateWal(suite.cluster, 'stalled', 1024);
    await waitUntil(() => count(receiver.stderr, /starting log streaming at/) >= 2, {
      timeoutMs: 60_000,
      description: `streaming again after the stall:\n${receiver.stderr}`,
    });
    receiver.signal('SIGINT');
    const result = await receiver.wait(30_000);
    expect(result.code, describeRun(result)).toBe(0);
  }, 120_000);
});
