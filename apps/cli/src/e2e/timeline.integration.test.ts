import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster } from '@wal/pg-cluster';
import { describe, expect, it } from 'vitest';
import {
  compareWithPgWal,
  describeRun,
  flushLsn,
  generateWal,
  insertLsn,
  isCompleteSegmentName,
  listFiles,
  lsnToText,
  MEGABYTE,
  type RunningProcess,
  runReceive,
  scalar,
  segmentStartOf,
  startReceive,
  suiteVersion,
  useSuiteServer,
  waitForFile,
  walFileContents,
} from './harness.js';

/**
 * Timeline switch (TAP cases 25-26, spec §3.6-3.7): a standby with a WAL-reserving slot is
 * promoted; `wal receive` streams from it through the slot, follows timeline 1 to its end,
 * fetches 00000002.history and continues on timeline 2 to an end position. A second receiver
 * streams from the standby while it is promoted (-Z lz4): it has to follow the switch live, and
 * write the history file uncompressed even so (spec §10 item 6).
 */

const VERSION = suiteVersion(16);

describe(`timeline switch on a promoted standby, PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'timeline', table: 'test_table', standby: true });

  /** The (uncompressed) contents of every completed segment equal the standby's pg_wal file. */
  function expectSegmentsMatchServer(directory: string, server: Cluster): string[] {
    const compared: string[] = [];
    for (const name of listFiles(directory)) {
      const segment = name.replace(/\.(gz|lz4)$/, '');
      if (!isCompleteSegmentName(segment)) continue;
      const contents = walFileContents(join(directory, name));
      const theirs = readFileSync(join(server.pgWalDir, segment));
      expect(contents.equals(theirs), `${name} equals pg_wal/${segment}`).toBe(true);
      compared.push(segment);
    }
    return compared;
  }

  it('follows timeline 1 to timeline 2 through a slot, live and after the promotion (TAP 25-26)', async () => {
    const { cluster: primary, standby: replica } = suite;
    await primary.sql('INSERT INTO test_table SELECT g, g::text FROM generate_series(1, 100) g');
    await replica.sql("SELECT pg_create_physical_replication_slot('archive_slot', true)");
    await replica.sql("SELECT pg_create_physical_replication_slot('live_slot', true)");
    // The slots' segment is complete before the promotion, as in the TAP test.
    await primary.sql('SELECT pg_switch_wal()');
    const primaryFlush = lsnToText(await flushLsn(primary));
    await replica.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${primaryFlush}'`);
    const restartLsn = (await scalar(
      replica,
      "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'archive_slot'",
    ))!;
    // pg_walfile_name() cannot run during recovery; the primary names the timeline 1 file.
    const beforePromotion = (await scalar(primary, `SELECT pg_walfile_name('${restartLsn}')`))!;

    // The live receiver streams timeline 1 from the standby before the promotion. Its end is the
    // last byte of the second segment after the one the standby is at now.
    const replayed = segmentStartOf(await flushLsn(primary), MEGABYTE);
    const liveEnd = replayed + BigInt(3 * MEGABYTE) - 1n;
    const live = suite.directory('live_wal');
    const liveReceiver: RunningProcess = startReceive(replica, [
      '--directory',
      live,
      '--verbose',
      '--slot',
      'live_slot',
      '--compress',
      'lz4',
      '--endpos',
      lsnToText(liveEnd),
      '--no-loop',
    ]);
    await liveReceiver.waitForStderr(/starting log streaming at/);
    // Its slot's segments are complete; the primary's next WAL reaches it through the standby.
    await generateWal(primary, 'test_table', MEGABYTE / 4);
    await waitForFile(live, /^00000001[0-9A-F]{16}\.lz4\.partial$/);
    const moreFlush = lsnToText(await flushLsn(primary));
    await replica.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${moreFlush}'`);

    await replica.promote();
    const afterPromotion = (await scalar(replica, 'SELECT pg_walfile_name(pg_current_wal_insert_lsn())'))!;
    expect(afterPromotion.startsWith('00000002')).toBe(true);
    await replica.sql('INSERT INTO test_table VALUES (7)');
    await replica.sql('SELECT pg_switch_wal()');
    const nextLsn = (await scalar(replica, 'SELECT pg_current_wal_insert_lsn()'))!;
    await replica.sql('INSERT INTO test_table VALUES (8)');
    while ((await insertLsn(replica)) <= liveEnd + 64n * 1024n)
      await generateWal(replica, 'test_table', 256 * 1024);

    // TAP 26: after the promotion, from the slot's restart_lsn on timeline 1.
    const archive = suite.directory('timeline_wal');
    const result = await runReceive(replica, [
      '--directory',
      archive,
      '--verbose',
      '--endpos',
      nextLsn,
      '--slot',
      'archive_slot',
      '--no-sync',
      '--no-loop',
    ]);
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stderr).toMatch(/switched to timeline 2 at [0-9A-F]+\/[0-9A-F]+/);
    const files = listFiles(archive);
    expect(files).toContain(beforePromotion);
    expect(files).toContain(afterPromotion);
    expect(files).toContain('00000002.history');
    expect(readFileSync(join(archive, '00000002.history'))).toEqual(
      readFileSync(join(replica.pgWalDir, '00000002.history')),
    );
    // The timeline 1 segment the switch lies in stays .partial (spec §3.6), never completed.
    const switchSegment = afterPromotion.slice(8);
    const timelineOnePartial = files.find((name) => /^00000001[0-9A-F]{16}\.partial$/.test(name));
    expect(timelineOnePartial === undefined || timelineOnePartial.slice(8, 24) <= switchSegment).toBe(true);
    const { compared, differences } = compareWithPgWal(archive, replica.pgWalDir);
    expect(differences).toEqual([]);
    expect(compared).toContain(beforePromotion);
    expect(compared).toContain(afterPromotion);

    // The live receiver followed the switch itself and ended on timeline 2.
    const liveResult = await liveReceiver.wait(60_000);
    expect(liveResult.code, describeRun(liveResult)).toBe(0);
    expect(liveResult.stderr).toMatch(/switched to timeline 2 at /);
    const liveFiles = listFiles(live);
    expect(liveFiles).toContain('00000002.history');
    expect(liveFiles.filter((name) => name.includes('.history'))).toEqual(['00000002.history']);
    expect(readFileSync(join(live, '00000002.history'))).toEqual(
      readFileSync(join(replica.pgWalDir, '00000002.history')),
    );
    const liveCompared = expectSegmentsMatchServer(live, replica);
    expect(liveCompared.some((name) => name.startsWith('00000001'))).toBe(true);
    expect(liveCompared.some((name) => name.startsWith('00000002'))).toBe(true);
    // It ended exactly at a segment boundary on timeline 2: no timeline 2 .partial.
    expect(liveFiles.filter((name) => /^00000002.*\.partial$/.test(name))).toEqual([]);
  }, 120_000);
});
