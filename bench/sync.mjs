// Synchronous standby: pgbench against a PostgreSQL 15 whose synchronous_standby_names names the
// receiver, once with `wal receive --synchronous` and once with `pg_receivewal --synchronous`
// (alternating A B A B, a fresh on-disk directory each time). Every commit waits until the receiver
// has flushed the commit record and said so, so TPS and latency measure the receiver's round trip.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startMeasured } from './lib/measure.mjs';
import { clientTool, pairOrder, receiverArguments, receivers } from './lib/receivers.mjs';
import { formatSummary, markdownTable, summarize } from './lib/stats.mjs';
import { loadPgCluster } from './lib/wal-server.mjs';
import { benchEnvironment } from './throughput.mjs';

const run = promisify(execFile);
const STANDBY_NAME = 'wal_bench_standby';
const SCALE = 4;

/** @param {{ durationSeconds: number; clients: number; runs: number; diskDirectory?: string; oursIs?: string; log: (line: string) => void }} options */
export async function benchSync(options) {
  const pair = receivers({ oursIs: options.oursIs, cpuProfileDirectory: options.cpuProfileDirectory });
  const pgbench = clientTool('pgbench');
  const { startCluster } = await loadPgCluster();
  // fsync stays off on the server (the @wal/pg-cluster default): the commit waits then are the
  // synchronous-replication round trip and the receiver's own fsync, which is what is compared.
  const cluster = await startCluster({
    version: 15,
    settings: { max_wal_size: '4GB', checkpoint_timeout: '1d' },
  });
  const connection = ['-h', cluster.host, '-p', String(cluster.port), '-U', cluster.superuser];
  const environment = benchEnvironment();
  const results = [];
  try {
    options.log(`PostgreSQL ${cluster.version} on port ${cluster.port}: pgbench -i -s ${SCALE}`);
    await run(pgbench, ['-i', '-q', '-s', String(SCALE), ...connection, 'postgres'], { env: environment });
    // Only now: with a synchronous standby named and none connected, pgbench -i would wait forever.
    await cluster.sql(`ALTER SYSTEM SET synchronous_standby_names = '${STANDBY_NAME}'`);
    await cluster.sql('SELECT pg_reload_conf()');
    for (let round = 0; round < options.runs; round += 1) {
      const measured = {};
      for (const receiver of pairOrder(pair, round)) {
        const directory = await mkdtemp(join(options.diskDirectory ?? tmpdir(), 'wal-bench-sync-'));
        const handle = startMeasured(
          receiver.command,
          receiverArguments(receiver, {
            directory,
            host: cluster.host,
            port: cluster.port,
            user: cluster.superuser,
            applicationName: STANDBY_NAME,
            mode: 'synchronous',
          }),
          { env: environment },
        );
        try {
          options.log(`waiting for ${receiver.label} to become the synchronous standby`);
          await cluster.waitFor(
            `SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = '${STANDBY_NAME}' AND sync_state = 'sync' AND state = 'streaming'`,
            30_000,
          );
          const { stdout } = await run(
            pgbench,
            [
              '-n',
              '-T',
              String(options.durationSeconds),
              '-c',
              String(options.clients),
              '-j',
              String(Math.min(options.clients, 2)),
              ...connection,
              'postgres',
            ],
            { env: environment },
          );
          const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout);
          const latency = /latency average = ([\d.]+) ms/.exec(stdout);
          const transactions = /number of transactions actually processed: (\d+)/.exec(stdout);
          if (tps === null || latency === null)
            throw new Error(`could not read pgbench's output:\n${stdout}`);
          measured[receiver.key] = {
            tps: Number(tps[1]),
            latencyMs: Number(latency[1]),
            transactions: Number(transactions?.[1]),
          };
        } finally {
          handle.kill('SIGINT');
          const outcome = await handle.done;
          await rm(directory, { recursive: true, force: true });
          if (measured[receiver.key] !== undefined) {
            measured[receiver.key].cpuSecondsPer1000Transactions =
              (outcome.cpuSeconds / measured[receiver.key].transactions) * 1000;
            measured[receiver.key].peakRssMiB = outcome.peakRssKiB / 1024;
          } else {
            options.log(`${receiver.label} output:\n${outcome.output}`);
          }
        }
        options.log(
          `sync run ${round + 1}/${options.runs} ${receiver.label}: ${measured[receiver.key].tps.toFixed(1)} TPS, ` +
            `${measured[receiver.key].latencyMs.toFixed(2)} ms average latency`,
        );
        // Between receivers the server has no synchronous standby; nothing commits meanwhile.
        await cluster.waitFor(
          `SELECT count(*) = 0 FROM pg_stat_replication WHERE application_name = '${STANDBY_NAME}'`,
          30_000,
        );
      }
      results.push(measured);
    }
  } finally {
    await cluster.stop();
  }
  return {
    durationSeconds: options.durationSeconds,
    clients: options.clients,
    scale: SCALE,
    runs: results,
    labels: { ours: pair.ours.label, pg: pair.reference.label },
  };
}

export function renderSync(report) {
  const rows = [];
  for (const [figure, name, digits] of [
    ['tps', 'TPS', 1],
    ['latencyMs', 'latency average ms', 2],
    ['cpuSecondsPer1000Transactions', 'receiver CPU s per 1000 transactions', 3],
    ['peakRssMiB', 'receiver peak RSS MiB', 1],
  ]) {
    rows.push([
      name,
      formatSummary(summarize(report.runs.map((run) => run.ours[figure])), digits),
      formatSummary(summarize(report.runs.map((run) => run.pg[figure])), digits),
      formatSummary(summarize(report.runs.map((run) => run.ours[figure] / run.pg[figure])), 2),
    ]);
  }
  return [
    `Synchronous standby: pgbench (TPC-B-like, scale ${report.scale}, ${report.clients} clients, ${report.durationSeconds} s) against PostgreSQL 15 ` +
      `with synchronous_standby_names naming the receiver (--synchronous, on disk), ${report.runs.length} alternating run(s); ratio = ours / pg_receivewal per run pair.`,
    '',
    markdownTable(['figure', report.labels.ours, report.labels.pg, 'ratio'], rows),
  ].join('\n');
}
