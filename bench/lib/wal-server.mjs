// A throwaway PostgreSQL 15 holding a known range of WAL for the receivers to stream again and again.
//
// A slot created with RESERVE_WAL before the WAL is written pins it ('bench_hold', never streamed
// from). Each run gets a fresh copy of that slot (pg_copy_physical_replication_slot keeps its
// restart_lsn), so every receiver starts at the same segment start through READ_REPLICATION_SLOT,
// and the copy a receiver advanced is dropped afterwards. The range ends at a segment boundary B
// inside WAL that already exists; walsender chunks are 128 kB aligned from the segment start, so a
// message ends exactly at B, and --endpos B-1 (pg_receivewal stops once it has received past
// --endpos) makes both receivers stop there: the outputs are whole segments, byte-comparable.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { formatLsn, parseLsn } from './lsn.mjs';
import { repositoryRoot } from './receivers.mjs';

const HOLDER_SLOT = 'bench_hold';
const MESSAGE_BYTES = 1024 * 1024 - 4096; // one non-transactional logical message: one ~1 MiB WAL record
const MESSAGES_PER_STATEMENT = 64;

export async function loadPgCluster() {
  const path = join(repositoryRoot, 'packages/pg-cluster/dist/index.js');
  if (!existsSync(path))
    throw new Error('packages/pg-cluster is not built: run `npx tsc -b packages/pg-cluster` first');
  return import(path);
}

/**
 * @param {{ bytes: number; segmentSizeMb?: number; settings?: Record<string, string>; log?: (line: string) => void }} options
 */
export async function startWalServer(options) {
  const { startCluster } = await loadPgCluster();
  const log = options.log ?? (() => {});
  const cluster = await startCluster({
    version: 15,
    segmentSizeMb: options.segmentSizeMb ?? 16,
    settings: {
      max_wal_size: '64GB',
      checkpoint_timeout: '1d',
      wal_init_zero: 'off',
      wal_compression: 'off',
      ...options.settings,
    },
  });
  try {
    const segmentSize = BigInt(cluster.segmentSize);
    await cluster.sql(`SELECT pg_create_physical_replication_slot('${HOLDER_SLOT}', true)`);
    const [slot] = await cluster.sql(
      `SELECT restart_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = '${HOLDER_SLOT}'`,
    );
    const restartLsn = parseLsn(slot.lsn);
    const startLsn = restartLsn - (restartLsn % segmentSize);
    const wanted = startLsn + BigInt(options.bytes) + segmentSize;
    const started = Date.now();
    for (;;) {
      const [row] = await cluster.sql('SELECT pg_current_wal_insert_lsn()::text AS lsn');
      if (parseLsn(row.lsn) >= wanted) break;
      await cluster.sql(
        `SELECT count(pg_logical_emit_message(false, 'wal-bench', repeat('x', ${MESSAGE_BYTES}))) FROM generate_series(1, ${MESSAGES_PER_STATEMENT})`,
      );
    }
    await cluster.sql('SELECT pg_switch_wal()');
    const [flushed] = await cluster.sql('SELECT pg_current_wal_flush_lsn()::text AS lsn');
    log(
      `generated WAL ${formatLsn(startLsn)}..${flushed.lsn} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    const [version] = await cluster.sql('SHOW server_version');
    let slotNumber = 0;
    return {
      cluster,
      serverVersion: version.server_version,
      segmentSize: cluster.segmentSize,
      startLsn,
      /** The end position that makes `bytes` (rounded up to whole segments) of WAL. */
      endposFor(bytes) {
        const segments = (BigInt(bytes) + segmentSize - 1n) / segmentSize;
        return startLsn + segments * segmentSize;
      },
      async createRunSlot() {
        slotNumber += 1;
        const name = `bench_run_${slotNumber}`;
        await cluster.sql(`SELECT pg_copy_physical_replication_slot('${HOLDER_SLOT}', '${name}')`);
        return name;
      },
      async dropSlot(name) {
        // The walsender may still be exiting after the receiver did: wait until the slot is released.
        for (let attempt = 0; ; attempt += 1) {
          const [row] = await cluster.sql(
            `SELECT active FROM pg_replication_slots WHERE slot_name = '${name}'`,
          );
          if (row === undefined) return;
          if (!row.active) {
            await cluster.sql(`SELECT pg_drop_replication_slot('${name}')`);
            return;
          }
          if (attempt > 200) throw new Error(`replication slot ${name} is still active after 10 s`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      },
      stop: () => cluster.stop(),
    };
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}
