import { readdirSync, readFileSync } from 'node:fs';
import type { Cluster } from '@wal/pg-cluster';
import { describe, expect, it } from 'vitest';
import { describeRun, flushLsn, lsnToText, suiteVersion, useSuiteServer, waitUntil } from './harness.js';
import {
  archiveFrom,
  backupFor,
  commitRows,
  readableForServer,
  recover,
  restoreCommand,
  rowCount,
  serverUserDirectory,
} from './restore-harness.js';

/**
 * `wal restore` as PostgreSQL's restore_command, on real servers (issue 12): an archive that
 * `wal receive` writes (plain, gzip, lz4) restores a base backup taken without WAL (the low-level
 * backup API, as `pg_basebackup -X none`: pg_basebackup 15 cannot back up 16 and later) to the
 * last commit, including commits only in the final `.partial`; recovery follows a promotion with
 * recovery_target_timeline 'latest'; a standby catches up from the archive, then streams.
 * The server runs as an unprivileged user (CI runs as root), so the archives are made readable
 * for it; restore_command runs this checkout's bin/run.js with this test's node.
 */

const VERSIONS = [...new Set([suiteVersion(14), suiteVersion(16), suiteVersion(18)])];
/** The lz4 archive is restored with --prefetch, its spool in a directory of the server user. */
const FORMS = [
  { name: 'plain', compress: [], prefetch: false },
  { name: 'gzip', compress: ['-Z', 'gzip'], prefetch: false },
  { name: 'lz4', compress: ['-Z', 'lz4'], prefetch: true },
] as const;

describe.each(VERSIONS)('wal restore on PostgreSQL %i', (version) => {
  const suite = useSuiteServer({ version, prefix: `restore-${version}`, standby: true });

  it('restores a base backup to the last commit from plain, gzip and lz4 archives; a standby catches up, then streams', async () => {
    const { cluster: primary } = suite;
    await primary.sql('CREATE TABLE committed (id integer PRIMARY KEY, payload text)');
    const archives = FORMS.map((form) => suite.directory(`archive-${form.name}`));
    const receivers = await Promise.all(
      FORMS.map((form, index) => archiveFrom(primary, archives[index]!, form.compress)),
    );
    const restored: Cluster[] = [];
    try {
      for (const [index, archive] of archives.entries()) {
        const spool = FORMS[index]!.prefetch
          ? serverUserDirectory(suite.directory(`spool-${index}`))
          : undefined;
        restored.push(await backupFor(primary, restoreCommand(archive, { spool })));
      }
      const standby = await backupFor(primary, restoreCommand(archives[0]!), true);
      restored.push(standby);
      // Several complete segments, then commits that only the last, unfinished segment holds.
      await commitRows(primary, 1, 3000, 1000);
      await commitRows(primary, 3001, 200, 1_000_000);
      const final = await rowCount(primary);
      expect(final).toBe(3200);
      const lastLsn = lsnToText(await flushLsn(primary));
      await primary.shutdown('fast');
      for (const receiver of receivers) {
        const result = await receiver.wait(30_000);
        expect(result.code, describeRun(result)).not.toBeNull();
      }

      for (const archive of archives) readableForServer(archive);

      // The standby restores everything the archive has (the last segment from its .partial),
      // then streams from the primary, started again.
      await primary.start();
      await standby.start();
      await standby.waitFor(`SELECT count(*) = ${final} FROM committed`, 60_000);
      await primary.sql("INSERT INTO committed VALUES (100000, 'streamed')");
      await standby.waitFor("SELECT status = 'streaming' FROM pg_stat_wal_receiver", 60_000);
      await standby.waitFor('SELECT count(*) = 1 FROM committed WHERE id = 100000', 60_000);
      expect(readFileSync(standby.logPath, 'utf8')).toMatch(/restored log file "[0-9A-F]{24}" from archive/);
      await standby.stop();

      for (const [index, archive] of archives.entries()) {
        const server = restored[index]!;
        expect(
          readdirSync(archive).some((name) => name.endsWith('.partial')),
          `${FORMS[index]!.name}: a .partial at ${lastLsn}`,
        ).toBe(true);
        const log = await recover(server);
        expect(await rowCount(server), `${FORMS[index]!.name} archive`).toBe(final);
        expect(log).toMatch(
          /wal restore: notice: "[0-9A-F]{24}" is only in the archive as "[0-9A-F]{24}(\.gz|\.lz4)?\.partial"/,
        );
        await server.stop();
      }
    } finally {
      for (const server of restored) await server.stop();
      for (const receiver of receivers) receiver.child.kill('SIGINT');
    }
  }, 240_000);

  it('stops recovery with FATAL on an unreadable archive; a standby streams instead', async () => {
    const { cluster: primary } = suite;
    const missing = `${suite.base}/no-such-archive`;
    const recovery = await backupFor(primary, restoreCommand(missing));
    try {
      // The server exits during recovery: starting it fails, and the log says why.
      await expect(recovery.start()).rejects.toThrow();
      const log = readFileSync(recovery.logPath, 'utf8');
      expect(log).toMatch(
        /FATAL: {2}could not restore file "[0-9A-F]{8}(\.history|[0-9A-F]{16})" from archive: child process exited with exit code 255/,
      );
      expect(log).toMatch(/wal restore: error: could not restore .*could not open archive directory/);
      expect(log).not.toMatch(/archive recovery complete/);
    } finally {
      await recovery.stop();
    }
    const standby = await backupFor(primary, restoreCommand(missing), true);
    try {
      await standby.start();
      await standby.waitFor("SELECT status = 'streaming' FROM pg_stat_wal_receiver", 60_000);
      expect(readFileSync(standby.logPath, 'utf8')).toMatch(
        /wal restore: detail: standby\.signal is present: exiting with 1/,
      );
    } finally {
      await standby.stop();
    }
  }, 120_000);

  it("follows a promotion: timelines 1 and 2 and 00000002.history, with recovery_target_timeline 'latest'", async () => {
    const { cluster: primary, standby: replica } = suite;
    await primary.sql('CREATE TABLE IF NOT EXISTS committed (id integer PRIMARY KEY, payload text)');
    await primary.sql('TRUNCATE committed');
    await replica.sql("SELECT pg_create_physical_replication_slot('archive_slot', true)");
    await primary.sql('SELECT pg_switch_wal()');
    await replica.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${lsnToText(await flushLsn(primary))}'`);
    const archive = suite.directory('archive-promotion');
    const receiver = await archiveFrom(replica, archive, ['-S', 'archive_slot', '-Z', 'lz4']);
    const restored = await backupFor(primary, restoreCommand(archive));
    try {
      await commitRows(primary, 1, 1000, 500);
      await replica.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${lsnToText(await flushLsn(primary))}'`);
      await replica.promote();
      await commitRows(replica, 1001, 1000, 500);
      await commitRows(replica, 2001, 100, 1_000_000);
      // A loaded machine may still be switching timelines: a fast shutdown sends the rest only to a
      // receiver that is streaming timeline 2 by then.
      await waitUntil(() => readdirSync(archive).includes('00000002.history'), {
        description: 'the receiver following the promotion onto timeline 2',
      });
      await replica.shutdown('fast');
      const result = await receiver.wait(30_000);
      expect(result.code, describeRun(result)).not.toBeNull();
      expect(readdirSync(archive)).toContain('00000002.history');

      readableForServer(archive);
      const log = await recover(restored);
      expect(await rowCount(restored)).toBe(2100);
      expect(log).toMatch(/restored log file "00000002.history" from archive/);
      expect(log).toMatch(/restored log file "00000002[0-9A-F]{16}" from archive/);
    } finally {
      await restored.stop();
      receiver.child.kill('SIGINT');
    }
  }, 180_000);
});
