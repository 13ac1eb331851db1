import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { testedVersions } from '@wal/pg-cluster';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  compareWithPgWal,
  describeRun,
  fileMode,
  fileSize,
  listFiles,
  lsnFromText,
  MEGABYTE,
  matching,
  partialAgainstPgWal,
  type RunResult,
  runReceive,
  scalar,
  useSuiteServer,
  walFileContents,
} from './harness.js';

/**
 * PostgreSQL's TAP test 020_pg_receivewal.pl, cases 13-24 (spec §8.2), reproduced with the built
 * `wal receive` against real servers of several major versions, with the TAP test's assertions
 * (exit codes, stderr, file names, modes) plus byte checks against the server's own pg_wal: every
 * completed segment, compressed or not, must decompress to exactly the server's file, and every
 * .partial must hold the server's bytes up to where it stopped.
 */

const MATRIX = [14, 16, 18].filter((version) => (testedVersions() as number[]).includes(version)) as (
  | 14
  | 16
  | 18
)[];

describe.skipIf(MATRIX.length === 0).each(MATRIX)(
  'TAP 020_pg_receivewal cases 13-24 on PostgreSQL %i',
  (version) => {
    const suite = useSuiteServer({ version, prefix: `tap${version}` });
    let archive: string;
    /** The .partial names the previous step left, per the TAP test's chain of expectations. */
    let lastPartial: string;

    beforeAll(() => {
      archive = suite.directory('archive_wal');
    });

    /** TAP's setup step: switch, remember the insert position, write one row after it. */
    async function nextEndPosition(row: number): Promise<string> {
      const { cluster } = suite;
      await cluster.sql('SELECT pg_switch_wal()');
      const lsn = (await scalar(cluster, 'SELECT pg_current_wal_insert_lsn()'))!;
      await cluster.sql(`INSERT INTO test_table VALUES (${row})`);
      return lsn;
    }

    /**
     * TAP's streaming step: `--verbose --endpos <endLsn> <options> --no-loop` into the archive,
     * which must succeed.
     */
    async function receiveUpTo(endLsn: string, options: readonly string[] = []): Promise<RunResult> {
      const result = await runReceive(suite.cluster, [
        '--directory',
        archive,
        '--verbose',
        '--endpos',
        endLsn,
        ...options,
        '--no-loop',
      ]);
      expect(result.code, describeRun(result)).toBe(0);
      return result;
    }

    /** The received bytes of a (possibly compressed) partial match pg_wal up to at least `endLsn`. */
    function expectPartialMatchesServer(name: string, endLsn: string): void {
      const { length, differences } = partialAgainstPgWal(
        archive,
        name,
        suite.cluster.pgWalDir,
        lsnFromText(endLsn),
      );
      expect(length, name).toBeLessThanOrEqual(MEGABYTE);
      expect(differences, name).toEqual([]);
    }

    /** A completed segment (any compression) decompresses to exactly the server's file. */
    function expectCompleteMatchesServer(name: string): void {
      const contents = walFileContents(join(archive, name));
      expect(contents.length, name).toBe(MEGABYTE);
      const server = readFileSync(join(suite.cluster.pgWalDir, name.slice(0, 24)));
      expect(contents.equals(server), `${name} decompresses to the server's ${name.slice(0, 24)}`).toBe(true);
    }

    it('13-14: the first stream with --endpos --synchronous --no-loop leaves exactly one .partial', async () => {
      await suite.cluster.sql('CREATE TABLE test_table (x integer PRIMARY KEY)');
      const endLsn = await nextEndPosition(1);
      const result = await receiveUpTo(endLsn, ['--synchronous']);
      expect(result.stderr).toMatch(/starting log streaming at [0-9A-F]+\/[0-9A-F]+ \(timeline 1\)/);
      expect(result.stderr).toMatch(/stopped log streaming at [0-9A-F]+\/[0-9A-F]+ \(timeline 1\)/);
      const partials = matching(archive, /\.partial$/);
      expect(partials, listFiles(archive).join(', ')).toHaveLength(1);
      lastPartial = partials[0]!;
      // Uncompressed partials are padded to the full segment size.
      expect(fileSize(join(archive, lastPartial))).toBe(MEGABYTE);
      expectPartialMatchesServer(lastPartial, endLsn);
    });

    it('15-16: gzip completes the uncompressed .partial segment as .gz and leaves one .gz.partial', async () => {
      const endLsn = await nextEndPosition(2);
      await receiveUpTo(endLsn, ['--compress', 'gzip:1']);
      const gzipped = matching(archive, /\.gz$/);
      const gzipPartials = matching(archive, /\.gz\.partial$/);
      expect(gzipped).toEqual([lastPartial.replace(/\.partial$/, '.gz')]);
      expect(gzipPartials).toHaveLength(1);
      // The restart found the uncompressed .partial; it stays behind.
      expect(listFiles(archive)).toContain(lastPartial);
      expectCompleteMatchesServer(gzipped[0]!);
      expectPartialMatchesServer(gzipPartials[0]!, endLsn);
      lastPartial = gzipPartials[0]!;
    });

    it('17: lz4 completes the .gz.partial segment as .lz4 and leaves one .lz4.partial', async () => {
      const endLsn = await nextEndPosition(3);
      await receiveUpTo(endLsn, ['--compress', 'lz4']);
      const lz4Files = matching(archive, /\.lz4$/);
      const lz4Partials = matching(archive, /\.lz4\.partial$/);
      expect(lz4Files).toEqual([lastPartial.replace(/(\.gz)?\.partial$/, '.lz4')]);
      expect(lz4Partials).toHaveLength(1);
      expectCompleteMatchesServer(lz4Files[0]!);
      expectPartialMatchesServer(lz4Partials[0]!, endLsn);
      lastPartial = lz4Partials[0]!;
    });

    it('18-21: the start point ignores compression; modes are 0700 and 0600', async () => {
      await receiveUpTo(await nextEndPosition(4));
      const completed = lastPartial.replace(/(\.gz|\.lz4)?\.partial$/, '');
      expect(listFiles(archive)).toContain(completed);
      expect(fileSize(join(archive, completed))).toBe(MEGABYTE);
      const { compared, differences } = compareWithPgWal(archive, suite.cluster.pgWalDir);
      expect(compared).toContain(completed);
      expect(differences).toEqual([]);
      // Never a completed segment left as .partial beside its complete file of the same compression.
      for (const name of listFiles(archive)) {
        if (!name.endsWith('.partial')) continue;
        expect(listFiles(archive), name).not.toContain(name.replace(/\.partial$/, ''));
      }
      expect(fileMode(archive)).toBe(0o700);
      for (const name of listFiles(archive)) expect(fileMode(join(archive, name)), name).toBe(0o600);
    });

    it('22-24: a missing slot fails with its name; an existing slot is the start point', async () => {
      const { cluster } = suite;
      const slotArchive = suite.directory('slot_wal');
      await cluster.sql('CHECKPOINT');
      await cluster.sql("SELECT pg_create_physical_replication_slot('archive_slot', true)");
      const streamedFile = (await scalar(
        cluster,
        "SELECT pg_walfile_name(restart_lsn) FROM pg_replication_slots WHERE slot_name = 'archive_slot'",
      ))!;
      await cluster.sql('INSERT INTO test_table VALUES (5)');
      const endLsn = await nextEndPosition(6);
      const common = ['--directory', slotArchive, '--no-loop', '--no-sync', '--verbose', '--endpos', endLsn];

      const missing = await runReceive(cluster, [...common, '--slot', 'nonexistentslot']);
      expect(missing.code, describeRun(missing)).toBe(1);
      if (version >= 15) {
        // READ_REPLICATION_SLOT (15+) finds out before streaming, with pg_receivewal's message.
        expect(missing.stderr).toMatch(
          /wal receive: error: replication slot "nonexistentslot" does not exist/,
        );
      } else {
        // 14: the server refuses START_REPLICATION SLOT with the same words.
        expect(missing.stderr).toMatch(/replication slot "nonexistentslot" does not exist/);
      }
      expect(missing.stderr).toMatch(/error: disconnected\n$/);

      const result = await runReceive(cluster, [...common, '--slot', 'archive_slot']);
      expect(result.code, describeRun(result)).toBe(0);
      if (version >= 15) {
        // Streaming began at the slot's restart_lsn segment, not at the current flush position.
        expect(listFiles(slotArchive)).toContain(streamedFile);
        expect(compareWithPgWal(slotArchive, cluster.pgWalDir, [streamedFile]).differences).toEqual([]);
      }
      expect(compareWithPgWal(slotArchive, cluster.pgWalDir).differences).toEqual([]);
    });
  },
);
