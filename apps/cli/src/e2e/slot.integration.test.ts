import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  describeRun,
  generateWal,
  lsnFromText,
  MEGABYTE,
  partialAgainstPgWal,
  runReceive,
  scalar,
  sleep,
  startReceive,
  suiteVersion,
  useSuiteServer,
  waitUntil,
  walFileNameOf,
} from './harness.js';

/**
 * Replication slots (spec §1.2, §3.4): --create-slot makes a physical slot that reserves
 * no WAL; --if-not-exists turns "already exists" into success; streaming with -S reports a flush
 * position, so the slot's restart_lsn follows what the receiver made durable, never more;
 * without a slot no flush position is reported at all; --drop-slot removes the slot.
 */

const VERSION = suiteVersion(16);

describe(`slots on PostgreSQL ${VERSION}`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'slot', table: 'slotted' });

  async function slotRow(name: string): Promise<Record<string, unknown> | undefined> {
    const [row] = await suite.cluster.sql(
      `SELECT slot_type, restart_lsn::text, active FROM pg_replication_slots WHERE slot_name = '${name}'`,
    );
    return row;
  }

  it('--create-slot reserves no WAL; a duplicate fails unless --if-not-exists', async () => {
    const { cluster } = suite;
    const created = await runReceive(cluster, ['--slot', 'e2e_slot', '--create-slot', '--verbose']);
    expect(created.code, describeRun(created)).toBe(0);
    expect(created.stderr).toMatch(/creating replication slot "e2e_slot"/);
    expect(await slotRow('e2e_slot')).toEqual({ slot_type: 'physical', restart_lsn: null, active: false });

    const duplicate = await runReceive(cluster, ['--slot', 'e2e_slot', '--create-slot']);
    expect(duplicate.code, describeRun(duplicate)).toBe(1);
    expect(duplicate.stderr).toMatch(/^wal receive: error: .*replication slot "e2e_slot" already exists/m);

    const tolerated = await runReceive(cluster, ['--slot', 'e2e_slot', '--create-slot', '--if-not-exists']);
    expect(tolerated.code, describeRun(tolerated)).toBe(0);
    expect(tolerated.stderr).not.toMatch(/error/);
    expect(await slotRow('e2e_slot')).toEqual({ slot_type: 'physical', restart_lsn: null, active: false });
  });

  it('streaming with -S: restart_lsn and the reported flush position never pass what is on disk', async () => {
    const { cluster } = suite;
    const directory = suite.directory('slot_wal');
    const receiver = startReceive(cluster, [
      '--directory',
      directory,
      '--slot',
      'e2e_slot',
      '--status-interval',
      '1',
      '--verbose',
      '-d',
      'application_name=e2e_with_slot',
    ]);
    await receiver.waitForStderr(/starting log streaming at/);
    const startLsn = lsnFromText(/starting log streaming at (\S+)/.exec(receiver.stderr)![1]!);

    // Until the receiver has made something durable it reports flush 0 (a deliberate deviation of
    // @wal/stream: pg_receivewal reports its start position at once), so NULLs are allowed early.
    let checks = 0;
    let reportedBoth = false;
    let advanced = false;
    for (let round = 0; round < 5; round++) {
      await generateWal(cluster, 'slotted', 300 * 1024);
      await sleep(300);
      // Freeze the receiver, then read what the server believes and what the directory holds.
      receiver.signal('SIGSTOP');
      try {
        const [row] = await cluster.sql<{ restart_lsn: string | null; flush_lsn: string | null }>(
          `SELECT s.restart_lsn::text, r.flush_lsn::text FROM pg_replication_slots s
             LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = 'e2e_slot'`,
        );
        expect(row).toBeDefined();
        if (row!.restart_lsn !== null && row!.flush_lsn !== null) reportedBoth = true;
        for (const reported of [row!.restart_lsn, row!.flush_lsn]) {
          if (reported === null) continue;
          const lsn = lsnFromText(reported);
          expect(lsn).toBeGreaterThanOrEqual(startLsn);
          if (lsn > startLsn) advanced = true;
          expectOnDisk(directory, lsn);
          checks += 1;
        }
      } finally {
        receiver.signal('SIGCONT');
      }
    }
    // 1.5 MB were written: a segment was completed, so the durable position was reported and moved.
    expect(reportedBoth, 'with a slot, a flush position is reported and moves restart_lsn').toBe(true);
    expect(advanced).toBe(true);
    expect(checks).toBeGreaterThanOrEqual(2);

    receiver.signal('SIGINT');
    const result = await receiver.wait(30_000);
    expect(result.code, describeRun(result)).toBe(0);
    expect(await slotRow('e2e_slot')).toMatchObject({ active: false });
  });

  /** Every byte before `lsn` is in the directory (completed segments, or the .partial's data). */
  function expectOnDisk(directory: string, lsn: bigint): void {
    const names = readdirSync(directory);
    const offset = Number(lsn % BigInt(MEGABYTE));
    const segment = walFileNameOf(1, lsn, MEGABYTE);
    const previous = walFileNameOf(1, lsn - 1n, MEGABYTE);
    if (offset === 0) {
      // Exactly at a boundary: the segment before it must be complete.
      expect(names, `${previous} completed for ${lsn.toString(16)}`).toContain(previous);
      return;
    }
    if (names.includes(segment)) return;
    expect(names, `${segment}.partial holds data up to ${lsn.toString(16)}`).toContain(`${segment}.partial`);
    const { differences } = partialAgainstPgWal(directory, `${segment}.partial`, suite.cluster.pgWalDir, lsn);
    expect(differences).toEqual([]);
  }

  it('without a slot, no flush position is reported (pg_stat_replication.flush_lsn is NULL)', async () => {
    const { cluster } = suite;
    const directory = suite.directory('no_slot_wal');
    const receiver = startReceive(cluster, [
      '--directory',
      directory,
      '--status-interval',
      '1',
      '-d',
      'application_name=e2e_without_slot',
    ]);
    let row: Record<string, unknown> | undefined;
    await waitUntil(
      async () => {
        await generateWal(cluster, 'slotted', 64 * 1024);
        [row] = await cluster.sql(
          "SELECT write_lsn::text, flush_lsn::text, replay_lsn::text FROM pg_stat_replication WHERE application_name = 'e2e_without_slot'",
        );
        return row !== undefined && row.write_lsn !== null;
      },
      { intervalMs: 200, description: 'a status update of the receiver without a slot' },
    );
    // The status update carries write = received; flush and apply are 0, shown as NULL.
    expect(row).toMatchObject({ flush_lsn: null, replay_lsn: null });
    receiver.signal('SIGTERM');
    const result = await receiver.wait(30_000);
    expect(result.code, describeRun(result)).toBe(0);
  });

  it("-s 0: answers the walsender's keepalive requests, so a short wal_sender_timeout never ends the stream", async () => {
    const { cluster } = suite;
    const directory = suite.directory('keepalive_wal');
    // A walsender that gives up on a silent client after 1.5 s, and asks for a reply after 0.75 s.
    const receiver = startReceive(cluster, [
      '--directory',
      directory,
      '--status-interval',
      '0',
      '--verbose',
      '-d',
      'application_name=e2e_keepalive options=-cwal_sender_timeout=1500',
    ]);
    await receiver.waitForStderr(/starting log streaming at/);
    const query = `SELECT pid, reply_time::text FROM pg_stat_replication WHERE application_name = 'e2e_keepalive'`;
    const replies = new Set<string>();
    let walsender: unknown;
    // Three different reply times from the same walsender: the receiver answered three requests
    // (it sends nothing unasked with -s 0) and was never timed out meanwhile.
    await waitUntil(
      async () => {
        const [row] = await cluster.sql<{ pid: number; reply_time: string | null }>(query);
        if (row === undefined) return false;
        walsender ??= row.pid;
        expect(row.pid, `the walsender was replaced: ${receiver.stderr}`).toBe(walsender);
        if (row.reply_time !== null) replies.add(row.reply_time);
        return replies.size >= 3;
      },
      { timeoutMs: 30_000, intervalMs: 200, description: 'three answered keepalive requests' },
    );
    receiver.signal('SIGINT');
    const result = await receiver.wait(30_000);
    expect(result.code, describeRun(result)).toBe(0);
    expect(result.stderr).not.toMatch(/disconnected|timeout/);
  });

  it('--drop-slot removes the slot; dropping it again fails', async () => {
    const { cluster } = suite;
    const dropped = await runReceive(cluster, ['--slot', 'e2e_slot', '--drop-slot', '--verbose']);
    expect(dropped.code, describeRun(dropped)).toBe(0);
    expect(dropped.stderr).toMatch(/dropping replication slot "e2e_slot"/);
    expect(
      await scalar(cluster, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'e2e_slot'"),
    ).toBe('0');
    const again = await runReceive(cluster, ['--slot', 'e2e_slot', '--drop-slot']);
    expect(again.code, describeRun(again)).toBe(1);
    expect(again.stderr).toMatch(/replication slot "e2e_slot" does not exist/);
  });
});
