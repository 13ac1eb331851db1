// Memory: peak RSS of each receiver streaming a small and a large volume of WAL (1 and 4 GiB in the
// published table) into /dev/shm with --no-sync; a receiver whose memory does not grow with the
// volume shows the same peak for both. The outputs are checked by file names and sizes only.
// The same runs give the marginal CPU per GiB: (CPU at the large volume - CPU at the small one) /
// (the difference in GiB), which leaves out what a run costs once (process start-up, module
// loading, JIT warm-up): what a receiver that runs for days spends per GiB.
import { describeDifference } from './lib/digest.mjs';
import { pairOrder, receivers } from './lib/receivers.mjs';
import { formatSize, formatSummary, markdownTable, summarize } from './lib/stats.mjs';
import { startWalServer } from './lib/wal-server.mjs';
import { streamOnce } from './throughput.mjs';

/** @param {{ memorySizes: number[]; runs: number; shmDirectory?: string; oursIs?: string; log: (line: string) => void }} options */
export async function benchMemory(options) {
  const pair = receivers({ oursIs: options.oursIs, cpuProfileDirectory: options.cpuProfileDirectory });
  const sizes = [...options.memorySizes].sort((a, b) => a - b);
  const server = await startWalServer({ bytes: sizes.at(-1), log: options.log });
  const runs = [];
  try {
    for (let round = 0; round < options.runs; round += 1) {
      const measured = {};
      for (const bytes of sizes) {
        let expected;
        for (const receiver of pairOrder(pair, round)) {
          const outcome = await streamOnce(server, receiver, {
            base: options.shmDirectory ?? '/dev/shm',
            mode: 'no-sync',
            bytes,
            digest: 'names',
          });
          expected ??= outcome.contents;
          const difference = describeDifference(expected, outcome.contents);
          if (difference !== undefined)
            throw new Error(`${receiver.label} wrote something else than pg_receivewal: ${difference}`);
          measured[`${receiver.key}:${bytes}`] = outcome.peakRssKiB / 1024;
          measured[`${receiver.key}:${bytes}:cpu`] = outcome.cpuSeconds;
          measured[`${receiver.key}:${bytes}:wal`] = outcome.walBytes;
          options.log(
            `memory run ${round + 1}/${options.runs} ${formatSize(bytes)} ${receiver.label}: peak RSS ${(outcome.peakRssKiB / 1024).toFixed(1)} MiB`,
          );
        }
      }
      runs.push(measured);
    }
  } finally {
    await server.stop();
  }
  return { sizes, runs, labels: { ours: pair.ours.label, pg: pair.reference.label } };
}

/** CPU seconds per GiB between the small and the large run of one receiver in one round. */
function marginalCpu(run, key, small, large) {
  const cpu = run[`${key}:${large}:cpu`] - run[`${key}:${small}:cpu`];
  const wal = run[`${key}:${large}:wal`] - run[`${key}:${small}:wal`];
  return cpu / (wal / 1024 ** 3);
}

export function renderMemory(report) {
  const [small, large] = [report.sizes[0], report.sizes.at(-1)];
  const rows = [];
  for (const key of ['ours', 'pg']) {
    const cells = report.sizes.map((bytes) =>
      formatSummary(summarize(report.runs.map((run) => run[`${key}:${bytes}`])), 1),
    );
    const growth = formatSummary(
      summarize(report.runs.map((run) => run[`${key}:${large}`] / run[`${key}:${small}`])),
      2,
    );
    rows.push([
      report.labels[key],
      ...cells,
      growth,
      formatSummary(summarize(report.runs.map((run) => marginalCpu(run, key, small, large))), 2),
    ]);
  }
  const ratio = formatSummary(
    summarize(
      report.runs.map((run) => marginalCpu(run, 'ours', small, large) / marginalCpu(run, 'pg', small, large)),
    ),
    2,
  );
  return [
    `Memory: peak RSS (MiB) streaming into /dev/shm with --no-sync, ${report.runs.length} run(s) each; growth = peak at ${formatSize(large)} / peak at ${formatSize(small)}, per run; marginal CPU = (CPU s at ${formatSize(large)} - CPU s at ${formatSize(small)}) per GiB of the difference, per run (start-up and warm-up left out).`,
    '',
    markdownTable(
      [
        'receiver',
        ...report.sizes.map((bytes) => `peak RSS ${formatSize(bytes)}`),
        'growth',
        'marginal CPU s/GiB',
      ],
      rows,
    ),
    '',
    `Marginal CPU per GiB, ours / pg_receivewal: ${ratio}.`,
  ].join('\n');
}
