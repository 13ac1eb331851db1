import { chmodSync, chownSync, readdirSync, readFileSync } from 'node:fs';
import { parseArchiveName } from '@wal/archive';
import { type Cluster, serverUser, startStandby } from '@wal/pg-cluster';
import { describe, expect, it } from 'vitest';
import {
  CLI_BIN,
  describeRun,
  flushLsn,
  lsnFromText,
  lsnToText,
  type RunningProcess,
  scalar,
  startReceive,
  suiteVersion,
  useSuiteServer,
  waitUntil,
  walFileNameOf,
} from './harness.js';

/**
 * `wal cleanup` as PostgreSQL's archive_cleanup_command (issue 15), on a real standby. An archive
 * that `wal receive -Z lz4` writes holds timelines 1 and 2 (a promotion) and 00000002.history; a
 * standby of the promoted server restores from it with `wal restore`, and at a restart point runs
 * `wal cleanup -D ARCHIVE %r`: every segment before %r goes, whatever its timeline and form, and
 * the history file stays. Server and receiver run as the unprivileged server user (CI runs as
 * root), so the archive is theirs; both commands run this checkout's bin/run.js with this node.
 */

const VERSION = suiteVersion(18);

function identity(): { uid?: number; gid?: number } {
  const user = serverUser();
  return user.uid === undefined ? {} : { uid: user.uid, gid: user.gid };
}

function command(subcommand: string, archive: string, placeholders: string): string {
  return `'${process.execPath}' '${CLI_BIN}' ${subcommand} -D '${archive}' ${placeholders}`;
}

/** The positions (last 16 hex digits) of the segments in the archive, by timeline. */
function segments(archive: string): { name: string; timeline: number; position: string }[] {
  return readdirSync(archive).flatMap((name) => {
    const parsed = parseArchiveName(name);
    return parsed?.kind === 'segment' ? [{ name, timeline: parsed.timeline, position: parsed.position }] : [];
  });
}

/** Commits `batches` batches of rows, switching to a new segment after each. */
async function commitAndSwitch(server: Cluster, batches: number): Promise<void> {
  for (let batch = 0; batch < batches; batch += 1) {
    await server.sql("INSERT INTO committed SELECT g, repeat('x', 200) FROM generate_series(1, 500) g");
    await server.sql('SELECT pg_switch_wal()');
  }
}

describe(`wal cleanup as archive_cleanup_command on PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: `cleanup-${VERSION}`, standby: true });

  it('removes the segments before %r from the archive at a restart point, on every timeline, and keeps the history file', async () => {
    const { cluster: primary, standby: replica } = suite;
    chmodSync(suite.base, 0o755);
    const archive = suite.directory('archive');
    const user = identity();
    if (user.uid !== undefined && user.gid !== undefined) chownSync(archive, user.uid, user.gid);

    await primary.sql('CREATE TABLE committed (id integer, payload text)');
    await replica.sql("SELECT pg_create_physical_replication_slot('archive_slot', true)");
    await primary.sql('SELECT pg_switch_wal()');
    await replica.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${lsnToText(await flushLsn(primary))}'`);
    const receiver: RunningProcess = startReceive(
      replica,
      ['-D', archive, '-S', 'archive_slot', '-Z', 'lz4', '-n', '-v', '--synchronous'],
      { identity: user },
    );
    let standby: Cluster | undefined;
    try {
      await receiver.waitForStderr(/starting log streaming at/);
      // Timeline 1, then a promotion onto timeline 2.
      await commitAndSwitch(primary, 3);
      await replica.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${lsnToText(await flushLsn(primary))}'`);
      await replica.promote();
      await commitAndSwitch(replica, 3);
      await waitUntil(() => readdirSync(archive).includes('00000002.history'), {
        description: 'the receiver following the promotion onto timeline 2',
      });

      // A standby of the promoted server that only restores from the archive.
      standby = await startStandby(replica, {
        copyWal: false,
        signal: 'standby',
        stream: false,
        start: false,
        settings: {
          restore_command: command('restore --retry-delay=100', archive, '%f %p'),
          archive_cleanup_command: command('cleanup', archive, '%r'),
          recovery_target_timeline: 'latest',
        },
      });
      // A checkpoint after the backup, for the restart point; then segments that carry it (and
      // the backup's end) into the archive complete.
      await replica.sql('CHECKPOINT');
      await replica.sql("INSERT INTO committed VALUES (0, 'after the checkpoint')");
      const replayTarget = lsnToText(await flushLsn(replica));
      await commitAndSwitch(replica, 2);
      const lastComplete = walFileNameOf(2, (await flushLsn(replica)) - 1n, replica.segmentSize);
      await waitUntil(() => readdirSync(archive).includes(`${lastComplete}.lz4`), {
        description: `${lastComplete}.lz4 in the archive`,
      });
      await standby.start();
      await standby.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${replayTarget}'`, 120_000);

      const before = segments(archive);
      expect(before.some((entry) => entry.timeline === 1)).toBe(true);

      // CHECKPOINT on a standby makes a restart point at the last checkpoint it replayed, and
      // runs archive_cleanup_command with %r, the segment of its redo point.
      await standby.sql('CHECKPOINT');
      const [control] = await standby.sql<{ redo_lsn: string; timeline_id: number }>(
        'SELECT redo_lsn::text, timeline_id FROM pg_control_checkpoint()',
      );
      const kept = walFileNameOf(control!.timeline_id, lsnFromText(control!.redo_lsn), standby.segmentSize);
      const keptPosition = kept.slice(8);
      expect(before.filter((entry) => entry.position < keptPosition).length).toBeGreaterThan(3);

      await waitUntil(() => segments(archive).every((entry) => entry.position >= keptPosition), {
        timeoutMs: 60_000,
        description: `no segment before ${kept} left in the archive`,
      });
      const after = readdirSync(archive);
      expect(segments(archive).some((entry) => entry.timeline === 1)).toBe(false);
      expect(after).toContain('00000002.history');
      expect(after.some((name) => name.startsWith(kept))).toBe(true);
      expect(after.some((name) => name.endsWith('.lz4'))).toBe(true);
      const log = readFileSync(standby.logPath, 'utf8');
      expect(log).toMatch(/restored log file "00000002[0-9A-F]{16}" from archive/);
      expect(log).not.toMatch(/archive_cleanup_command/);
      // The standby goes on restoring after the cleanup.
      const rows = await scalar(replica, 'SELECT count(*) FROM committed');
      await standby.waitFor(`SELECT count(*) = ${rows} FROM committed`, 60_000);
    } finally {
      await standby?.stop();
      receiver.child.kill('SIGINT');
      const result = await receiver.wait(30_000);
      expect(result.code, describeRun(result)).not.toBeNull();
    }
  }, 240_000);
});
