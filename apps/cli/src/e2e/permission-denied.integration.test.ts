import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { serverUser } from '@wal/pg-cluster';
import { describe, expect, it } from 'vitest';
import {
  clientToolsSkipReason,
  describeRun,
  generateWal,
  type ProcessIdentity,
  type RunningProcess,
  startPgReceivewal,
  startReceive,
  suiteVersion,
  switchWal,
  useSuiteServer,
  waitForFile,
} from './harness.js';

const VERSION = suiteVersion(14);

/** pg_receivewal runs the same steps beside us when it is installed and can stream from VERSION. */
const PG_SKIP_REASON =
  clientToolsSkipReason() ??
  (VERSION > 15 ? `pg_receivewal 15 cannot stream from PostgreSQL ${VERSION}` : undefined);
if (PG_SKIP_REASON !== undefined) {
  console.warn(`[e2e] ${PG_SKIP_REASON}: the permission tests run wal receive alone`);
}
const PROGRAMS: readonly ('wal' | 'pg')[] = PG_SKIP_REASON === undefined ? ['wal', 'pg'] : ['wal'];

/**
 * An archive directory that maintenance leaves unwritable for a while (issue 11): pg_receivewal
 * treats a segment it cannot create or rename like any streaming failure, and retries every 5 s;
 * so does `wal receive`, and with -n it ends with "error: disconnected". Both receivers run here,
 * side by side, with the same steps.
 */

/**
 * The user the receivers run as: root ignores file permissions, so under root (CI) they run as
 * the server's unprivileged user; otherwise as this user, whom the modes below do stop.
 */
function receiverIdentity(): ProcessIdentity {
  const user = serverUser();
  return user.uid === undefined ? {} : { uid: user.uid, gid: user.gid! };
}

describe(`an archive directory that is briefly not writable, on PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'eacces', table: 'guarded' });
  const identity = receiverIdentity();

  /** A target the receiver's user owns, in a directory it may enter. */
  function target(name: string): string {
    const parent = suite.directory(name);
    chmodSync(suite.base, 0o755);
    chmodSync(parent, 0o755);
    const directory = join(parent, 'wal');
    mkdirSync(directory, { mode: 0o700 });
    if (identity.uid !== undefined) chownSync(directory, identity.uid, identity.gid!);
    return directory;
  }

  async function run(program: 'wal' | 'pg', directory: string, args: string[]): Promise<RunningProcess> {
    const start = program === 'wal' ? startReceive : startPgReceivewal;
    const receiver = start(suite.cluster, ['--directory', directory, '--verbose', ...args], { identity });
    await receiver.waitForStderr(/starting log streaming at/);
    await generateWal(suite.cluster, 'guarded', 1024);
    await waitForFile(directory, /\.partial$/);
    return receiver;
  }

  const name = (program: 'wal' | 'pg'): string => (program === 'wal' ? 'wal receive' : 'pg_receivewal');

  it.each(PROGRAMS)(
    '%s: retried every 5 s, and streaming resumes once it is writable',
    async (program) => {
      const directory = target(`retry_${program}`);
      const receiver = await run(program, directory, []);
      chmodSync(directory, 0o500);
      try {
        // The finished segment cannot be renamed (nor the next one created): twice, to see the retry.
        await switchWal(suite.cluster);
        await generateWal(suite.cluster, 'guarded', 1024);
        await receiver.waitForStderr(
          /disconnected; waiting \d+ seconds to try again\n[\s\S]*disconnected; waiting/,
        );
      } finally {
        chmodSync(directory, 0o700);
      }
      await waitForFile(directory, /^[0-9A-F]{24}$/);
      receiver.signal('SIGINT');
      const result = await receiver.wait(30_000);
      expect(result.code, describeRun(result)).toBe(0);
      expect(result.stderr).toMatch(
        new RegExp(
          `${name(program)}: error: could not rename file "[^"]*\\.partial" to "[^"]*": (P|p)ermission denied`,
        ),
      );
      expect(result.stderr).toContain(`${name(program)}: disconnected; waiting 5 seconds to try again\n`);
    },
    90_000,
  );

  it.each(PROGRAMS)(
    '%s -n: the error, then "error: disconnected", exit 1',
    async (program) => {
      const directory = target(`no_loop_${program}`);
      const receiver = await run(program, directory, ['--no-loop']);
      chmodSync(directory, 0o500);
      try {
        await switchWal(suite.cluster);
        await generateWal(suite.cluster, 'guarded', 1024);
        const result = await receiver.wait(30_000);
        expect(result.code, describeRun(result)).toBe(1);
        expect(result.stderr).toMatch(/ermission denied/);
        expect(result.stderr).toMatch(new RegExp(`\n${name(program)}: error: disconnected\n$`));
      } finally {
        chmodSync(directory, 0o700);
      }
    },
    90_000,
  );

  it.each(PROGRAMS)(
    '%s: not writable from the start: streams, then retries the new segment',
    async (program) => {
      const directory = target(`start_${program}`);
      chmodSync(directory, 0o500);
      const start = program === 'wal' ? startReceive : startPgReceivewal;
      const receiver = start(suite.cluster, ['--directory', directory, '--verbose'], { identity });
      try {
        await generateWal(suite.cluster, 'guarded', 1024);
        await receiver.waitForStderr(/disconnected; waiting \d+ seconds to try again\n/);
      } finally {
        chmodSync(directory, 0o700);
      }
      receiver.signal('SIGINT');
      const result = await receiver.wait(30_000);
      expect(result.code, describeRun(result)).toBe(0);
      expect(result.stderr).toMatch(
        new RegExp(
          `${name(program)}: error: could not (create|open) write-ahead log file "[^"]*": (P|p)ermission denied`,
        ),
      );
    },
    90_000,
  );
});
