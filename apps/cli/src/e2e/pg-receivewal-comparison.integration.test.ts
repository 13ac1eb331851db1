import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  compareDirectories,
  compareWithPgWal,
  describeRun,
  flushLsn,
  generateWal,
  insertLsn,
  isCompleteSegmentName,
  listFiles,
  lsnToText,
  MEGABYTE,
  partialAgainstPgWal,
  pgReceivewalComparison,
  type RunResult,
  runPgReceivewal,
  runReceive,
  scalar,
  useSuiteServer,
  walFileContents,
} from './harness.js';

/**
 * The same WAL range streamed by PostgreSQL's pg_receivewal (Debian's 15) and by `wal receive`,
 * each into its own directory: identical file names and identical bytes, the zero-padded .partial
 * included; completed segments equal the server's pg_wal files; -Z gzip and -Z lz4 runs (ours and
 * pg_receivewal's) decompress to the uncompressed files.
 *
 * pg_receivewal 15 refuses servers newer than 15, so this runs against PostgreSQL 15.
 *
 * Determinism: every run starts at the same segment (each has its own WAL-reserving slot, all
 * created together, and an empty directory: READ_REPLICATION_SLOT gives the start) and all WAL is
 * flushed before the first run, so the walsender cuts every run into the same messages and every
 * run stops after the same message. Should the server write WAL of its own meanwhile (a
 * bgwriter's running-xacts record), the flush position moves; the runs are then repeated.
 */

const { version: VERSION, runnable } = pgReceivewalComparison('pg_receivewal comparison');

const VARIANTS = [
  { key: 'pg', program: 'pg_receivewal', compress: undefined },
  { key: 'wal', program: 'wal', compress: undefined },
  { key: 'wal_gzip', program: 'wal', compress: 'gzip:1' },
  { key: 'wal_lz4', program: 'wal', compress: 'lz4' },
  { key: 'pg_gzip', program: 'pg_receivewal', compress: 'gzip:1' },
  { key: 'pg_lz4', program: 'pg_receivewal', compress: 'lz4' },
] as const;
type VariantKey = (typeof VARIANTS)[number]['key'];

describe.skipIf(!runnable)(`wal receive and pg_receivewal on PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'compare', table: 'compared' });
  let directories: Record<VariantKey, string>;
  let endLsn: bigint;
  let startSegment: string;

  beforeAll(async () => {
    const { cluster, base } = suite;
    let attempt = 0;
    while (true) {
      attempt += 1;
      const round = join(base, `attempt${attempt}`);
      mkdirSync(round);
      directories = {} as Record<VariantKey, string>;
      // A recent redo point keeps the range short; every slot reserves WAL from the same point.
      await cluster.sql('CHECKPOINT');
      const slots = VARIANTS.map((variant) => `cmp_${attempt}_${variant.key}`);
      await cluster.sql(
        `SELECT pg_create_physical_replication_slot(name, true) FROM unnest(ARRAY['${slots.join("','")}']) AS name`,
      );
      const restartPoints = await cluster.sql<{ restart_lsn: string }>(
        `SELECT DISTINCT restart_lsn::text FROM pg_replication_slots WHERE slot_name LIKE 'cmp_${attempt}_%'`,
      );
      expect(restartPoints).toHaveLength(1);
      startSegment = (await scalar(cluster, `SELECT pg_walfile_name('${restartPoints[0]!.restart_lsn}')`))!;

      // About two and a half segments, then an end position inside the last one with a row after it.
      await generateWal(cluster, 'compared', Math.round(2.5 * MEGABYTE));
      endLsn = await insertLsn(cluster);
      await cluster.sql('INSERT INTO compared VALUES (0, 1)');
      const flushBefore = await flushLsn(cluster);
      expect(flushBefore).toBeGreaterThan(endLsn);

      for (const [index, variant] of VARIANTS.entries()) {
        const directory = join(round, variant.key);
        mkdirSync(directory, { mode: 0o700 });
        directories[variant.key] = directory;
        const args = [
          '--directory',
          directory,
          '--endpos',
          lsnToText(endLsn),
          '--no-loop',
          '--slot',
          slots[index]!,
          ...(variant.compress === undefined ? [] : ['--compress', variant.compress]),
        ];
        const result: RunResult =
          variant.program === 'wal' ? await runReceive(cluster, args) : await runPgReceivewal(cluster, args);
        expect(result.code, `${variant.program} ${args.join(' ')}: ${describeRun(result)}`).toBe(0);
      }
      const flushAfter = await flushLsn(cluster);
      if (flushAfter === flushBefore) break;
      // The server wrote WAL while the runs went on: the last message may have differed.
      if (attempt >= 3) throw new Error('the server kept writing WAL of its own during three rounds of runs');
    }
  }, 180_000);

  it('streams the same file names and the same bytes as pg_receivewal, .partial included', () => {
    const names = listFiles(directories.wal);
    expect(names[0]).toBe(startSegment);
    // Several completed segments and the .partial the end position lies in.
    expect(names.filter(isCompleteSegmentName).length).toBeGreaterThanOrEqual(2);
    expect(names.filter((name) => name.endsWith('.partial'))).toHaveLength(1);
    expect(compareDirectories(directories.pg, directories.wal)).toEqual([]);
  });

  it("completed segments equal the server's pg_wal files; the .partial holds the server's bytes", () => {
    const { cluster } = suite;
    const { compared, differences } = compareWithPgWal(directories.wal, cluster.pgWalDir);
    expect(differences).toEqual([]);
    expect(compared.length).toBeGreaterThanOrEqual(2);
    const partial = listFiles(directories.wal).find((name) => name.endsWith('.partial'))!;
    const { length, differences: partialDifferences } = partialAgainstPgWal(
      directories.wal,
      partial,
      cluster.pgWalDir,
      endLsn,
    );
    expect(length).toBe(MEGABYTE);
    expect(partialDifferences).toEqual([]);
  });

  it.each([
    ['wal_gzip', '.gz'],
    ['wal_lz4', '.lz4'],
    ['pg_gzip', '.gz'],
    ['pg_lz4', '.lz4'],
  ] as const)('%s decompresses to the uncompressed run', (key, suffix) => {
    const plain = listFiles(directories.wal);
    const compressed = listFiles(directories[key]);
    // Names: the compression suffix goes before .partial.
    expect(compressed).toEqual(
      plain.map((name) =>
        name.endsWith('.partial') ? `${name.slice(0, 24)}${suffix}.partial` : `${name}${suffix}`,
      ),
    );
    for (const name of plain) {
      const expected = readFileSync(join(directories.wal, name));
      const target = name.endsWith('.partial') ? `${name.slice(0, 24)}${suffix}.partial` : `${name}${suffix}`;
      const actual = walFileContents(join(directories[key], target));
      if (name.endsWith('.partial')) {
        // Compressed partials are not padded: the received bytes, then nothing.
        expect(actual.length, target).toBeLessThanOrEqual(MEGABYTE);
        expect(actual.equals(expected.subarray(0, actual.length)), `${target}: received bytes`).toBe(true);
        expect(
          expected.subarray(actual.length).every((byte) => byte === 0),
          `${target}: length`,
        ).toBe(true);
      } else {
        expect(actual.equals(expected), target).toBe(true);
      }
    }
  });

  it("each continues the other's directory: pg_receivewal resumes a wal receive .partial and vice versa", async () => {
    const { cluster, base } = suite;
    const walThenPg = join(base, 'wal_then_pg');
    const pgThenWal = join(base, 'pg_then_wal');
    cpSync(directories.wal, walThenPg, { recursive: true });
    cpSync(directories.pg, pgThenWal, { recursive: true });
    // Two more segments; the end is a segment's last byte, so the outcome does not depend on how
    // the walsender cut its messages.
    const end = endLsn - (endLsn % BigInt(MEGABYTE)) + BigInt(3 * MEGABYTE) - 1n;
    while ((await insertLsn(cluster)) <= end + 64n * 1024n)
      await generateWal(cluster, 'compared', 256 * 1024);
    const args = ['--endpos', lsnToText(end), '--no-loop', '--verbose'];
    const pgResult = await runPgReceivewal(cluster, ['--directory', walThenPg, ...args]);
    expect(pgResult.code, describeRun(pgResult)).toBe(0);
    const walResult = await runReceive(cluster, ['--directory', pgThenWal, ...args]);
    expect(walResult.code, describeRun(walResult)).toBe(0);
    // Both resumed at the start of the .partial's segment.
    const partial = listFiles(directories.wal).find((name) => name.endsWith('.partial'))!;
    const resumeAt = lsnToText(endLsn - (endLsn % BigInt(MEGABYTE)));
    expect(pgResult.stderr).toContain(`starting log streaming at ${resumeAt} (timeline 1)`);
    expect(walResult.stderr).toContain(`starting log streaming at ${resumeAt} (timeline 1)`);
    expect(listFiles(pgThenWal)).toContain(partial.slice(0, 24));
    expect(listFiles(pgThenWal).filter((name) => name.endsWith('.partial'))).toEqual([]);
    expect(compareDirectories(walThenPg, pgThenWal)).toEqual([]);
    expect(compareWithPgWal(pgThenWal, cluster.pgWalDir).differences).toEqual([]);
  });
});

describe.skipIf(!runnable)(
  `wal receive and pg_receivewal across a timeline switch, PostgreSQL ${VERSION}`,
  () => {
    const suite = useSuiteServer({
      version: VERSION,
      prefix: 'compare-timeline',
      table: 'switched',
      standby: true,
    });

    it('write identical directories: timeline 1 segments, its .partial, 00000002.history, timeline 2 segments', async () => {
      const { cluster: primary, standby: replica } = suite;
      // Two slots reserving WAL from the same point, one per program.
      await replica.sql(
        "SELECT pg_create_physical_replication_slot(name, true) FROM unnest(ARRAY['tl_pg', 'tl_wal']) AS name",
      );
      await generateWal(primary, 'switched', MEGABYTE);
      const primaryFlush = lsnToText(await flushLsn(primary));
      await replica.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${primaryFlush}'`);
      await replica.promote();
      // The end: the last byte of the second segment after the one timeline 2 starts in, so both
      // runs stop on a segment boundary, whatever messages the walsender cut.
      const switchSegmentStart = (await flushLsn(replica)) - ((await flushLsn(replica)) % BigInt(MEGABYTE));
      const endLsn = switchSegmentStart + BigInt(3 * MEGABYTE) - 1n;
      while ((await insertLsn(replica)) <= endLsn + 64n * 1024n)
        await generateWal(replica, 'switched', 256 * 1024);

      const ours = suite.directory('wal');
      const theirs = suite.directory('pg');
      const common = ['--endpos', lsnToText(endLsn), '--no-loop', '--verbose'];
      const pgResult = await runPgReceivewal(replica, ['--directory', theirs, '--slot', 'tl_pg', ...common]);
      expect(pgResult.code, describeRun(pgResult)).toBe(0);
      const walResult = await runReceive(replica, ['--directory', ours, '--slot', 'tl_wal', ...common]);
      expect(walResult.code, describeRun(walResult)).toBe(0);
      expect(walResult.stderr).toMatch(/switched to timeline 2 at /);
      // The same lines: "starting log streaming" once, not again on timeline 2; the old
      // timeline's "not renaming … .partial"; "stopped log streaming" twice.
      expect(walResult.stderr.match(/starting log streaming at/g)).toHaveLength(1);
      expect(walResult.stderr.replace(/^wal receive: /gm, '')).toBe(
        pgResult.stderr.replace(/^pg_receivewal: /gm, ''),
      );

      const names = listFiles(ours);
      expect(names).toContain('00000002.history');
      expect(names.some((name) => /^00000001[0-9A-F]{16}$/.test(name))).toBe(true);
      expect(names.some((name) => /^00000001[0-9A-F]{16}\.partial$/.test(name))).toBe(true);
      expect(names.some((name) => /^00000002[0-9A-F]{16}$/.test(name))).toBe(true);
      expect(compareDirectories(theirs, ours)).toEqual([]);
      const { differences } = compareWithPgWal(ours, replica.pgWalDir);
      expect(differences).toEqual([]);
    }, 120_000);
  },
);
