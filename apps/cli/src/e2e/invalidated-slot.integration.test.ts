import { cpSync } from 'node:fs';
import { testedVersions } from '@wal/pg-cluster';
import { describe, expect, it } from 'vitest';
import {
  clientToolsSkipReason,
  describeRun,
  flushLsn,
  generateWal,
  lsnToText,
  runReceive,
  sleep,
  startPgReceivewal,
  useSuiteServer,
} from './harness.js';

/**
 * A slot invalidated by idle_replication_slot_timeout (PostgreSQL 18): where pg_receivewal 18
 * retries START_REPLICATION every 5 s forever (its main loop retries every StreamLog failure; the
 * pg_receivewal 15 used as oracle here refuses servers newer than 15), `wal receive` stops with
 * exit 1, the reason and the first LSN its directory lacks, and the flags that recreate the slot
 * (ADR 0006, item 10).
 */

const runs18 = testedVersions().includes(18);

describe.skipIf(!runs18)('an invalidated slot, PostgreSQL 18', () => {
  const suite = useSuiteServer({ version: 18, prefix: 'invalidated', table: 'idle' });

  it('stops at once with the reason, the gap and a hint, instead of retrying', async () => {
    const { cluster } = suite;
    const directory = suite.directory('invalidated_wal');
    await cluster.sql("SELECT pg_create_physical_replication_slot('idle_slot', true)");
    await generateWal(cluster, 'idle', 64 * 1024);
    const end = await flushLsn(cluster);
    const first = await runReceive(cluster, [
      '-D',
      directory,
      '--slot',
      'idle_slot',
      // Stops once WAL past it arrived: one byte before the flush position needs no more WAL.
      '--endpos',
      lsnToText(end - 1n),
      '--status-interval',
      '1',
    ]);
    expect(first.code, describeRun(first)).toBe(0);

    await cluster.sql('ALTER SYSTEM SET idle_replication_slot_timeout = 1');
    await cluster.sql('SELECT pg_reload_conf()');
    await sleep(2500);
    await cluster.sql('CHECKPOINT');
    const [row] = await cluster.sql<{ invalidation_reason: string }>(
      "SELECT invalidation_reason FROM pg_replication_slots WHERE slot_name = 'idle_slot'",
    );
    expect(row?.invalidation_reason).toBe('idle_timeout');

    // No --no-loop: a retryable failure would keep it running until the timeout kills it.
    const second = await runReceive(cluster, ['-D', directory, '--slot', 'idle_slot'], { timeoutMs: 30_000 });
    expect(second.code, describeRun(second)).toBe(1);
    expect(second.stderr).not.toMatch(/trying again|waiting/);
    expect(second.stderr).toMatch(
      /error: replication slot "idle_slot" has been invalidated \(reason "idle_timeout": the slot was unused for longer than idle_replication_slot_timeout\)/,
    );
    // The directory holds WAL up to the segment that the first run left .partial.
    const segmentStart = (end / 1048576n) * 1048576n;
    expect(second.stderr).toContain(`The archive has no WAL from ${lsnToText(segmentStart)} on`);
    expect(second.stderr).toContain(
      'hint: Drop the slot with --drop-slot --slot=idle_slot, create it again with --create-slot --slot=idle_slot, then start again.',
    );
  }, 90_000);
});

/**
 * PostgreSQL 15 with max_slot_wal_keep_size: START_REPLICATION through the invalidated slot is
 * accepted and 58P01 follows. pg_receivewal 15 retries it every 5 s; `wal receive` asks
 * READ_REPLICATION_SLOT on a new connection, finds no restart_lsn, and stops.
 */
describe.skipIf(!testedVersions().includes(15))(
  'a slot invalidated by max_slot_wal_keep_size, PostgreSQL 15',
  () => {
    const suite = useSuiteServer({
      version: 15,
      prefix: 'keepsize',
      table: 'kept',
      settings: { max_slot_wal_keep_size: '2MB', checkpoint_timeout: '1h' },
    });

    it('stops with the invalidated-slot error, where pg_receivewal retries', async () => {
      const { cluster } = suite;
      const directory = suite.directory('keepsize_wal');
      await cluster.sql("SELECT pg_create_physical_replication_slot('kept_slot', true)");
      await generateWal(cluster, 'kept', 64 * 1024);
      const end = await flushLsn(cluster);
      const first = await runReceive(cluster, [
        '-D',
        directory,
        '--slot',
        'kept_slot',
        '--endpos',
        lsnToText(end - 1n),
      ]);
      expect(first.code, describeRun(first)).toBe(0);
      for (let segment = 0; segment < 6; segment++) {
        await generateWal(cluster, 'kept', 16 * 1024);
        await cluster.sql('SELECT pg_switch_wal()');
      }
      await cluster.sql('CHECKPOINT');
      const [row] = await cluster.sql<{ wal_status: string }>(
        "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'kept_slot'",
      );
      expect(row?.wal_status).toBe('lost');

      const ours = await runReceive(cluster, ['-D', directory, '--slot', 'kept_slot'], { timeoutMs: 30_000 });
      expect(ours.code, describeRun(ours)).toBe(1);
      expect(ours.stderr).toMatch(
        /error: replication slot "kept_slot" has been invalidated \(the server removed the WAL at/,
      );
      expect(ours.stderr).toContain('hint: Drop the slot with --drop-slot --slot=kept_slot');

      if (clientToolsSkipReason() !== undefined) return;
      // The same archive, so that pg_receivewal asks for the same removed WAL.
      const copy = suite.directory('keepsize_pg');
      cpSync(directory, copy, { recursive: true });
      const theirs = startPgReceivewal(cluster, ['-D', copy, '--slot', 'kept_slot']);
      await theirs.waitForStderr(/has already been removed[\s\S]*waiting 5 seconds to try again/);
      theirs.signal('SIGINT');
      await theirs.wait(30_000);
    }, 90_000);
  },
);
