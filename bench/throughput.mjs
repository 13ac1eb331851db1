// Throughput against a real server: pg_receivewal and `wal receive` stream the same 1 GiB of WAL
// from a throwaway PostgreSQL 15 to --endpos with -n, alternating A B A B, into
//   (a) a directory on disk with the default fsync, (b) on disk with --no-sync, (c) /dev/shm --no-sync.
// Every output directory is hashed and compared with the first pg_receivewal output before any
// figure is reported.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeDifference, digestDirectory } from './lib/digest.mjs';
import { formatLsn } from './lib/lsn.mjs';
import { fileSystemOf } from './lib/machine.mjs';
import { runMeasured } from './lib/measure.mjs';
import { pairOrder, receiverArguments, receivers, STREAMING_STARTED } from './lib/receivers.mjs';
import { formatSize, formatSummary, GiB, MiB, markdownTable, summarize } from './lib/stats.mjs';
import { startWalServer } from './lib/wal-server.mjs';

export const CONFIGURATIONS = {
  'disk-fsync': { label: 'disk, default fsync', mode: 'fsync', place: 'disk' },
  'disk-no-sync': { label: 'disk, --no-sync', mode: 'no-sync', place: 'disk' },
  'shm-no-sync': { label: '/dev/shm, --no-sync', mode: 'no-sync', place: 'shm' },
};

/**
 * One receiver run against the server: a fresh slot copy, a fresh directory; returns the figures
 * and the digest of what it wrote (the directory is removed).
 */
export async function streamOnce(server, receiver, { base, mode, bytes, digest = 'full' }) {
  const slot = await server.createRunSlot();
  const directory = await mkdtemp(join(base, 'wal-bench-'));
  try {
    const endpos = server.endposFor(bytes);
    const args = receiverArguments(receiver, {
      directory,
      host: server.cluster.host,
      port: server.cluster.port,
      user: server.cluster.superuser,
      slot,
      endpos: formatLsn(endpos - 1n),
      mode,
    });
    const result = await runMeasured(receiver.command, args, {
      markers: { streaming: STREAMING_STARTED },
      env: benchEnvironment(),
    });
    if (result.exitCode !== 0) {
      throw new Error(`${receiver.label} exited with ${result.exitCode ?? result.signal}:\n${result.output}`);
    }
    const walBytes = Number(endpos - server.startLsn);
    const contents =
      digest === 'full'
        ? await digestDirectory(directory)
        : await digestDirectory(directory, { namesOnly: true });
    return {
      receiver: receiver.key,
      walBytes,
      wallSeconds: result.wallSeconds,
      streamingSeconds:
        result.markerSeconds.streaming === undefined
          ? Number.NaN
          : result.wallSeconds - result.markerSeconds.streaming,
      cpuSeconds: result.cpuSeconds,
      peakRssKiB: result.peakRssKiB,
      contents,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
    await server.dropSlot(slot);
  }
}

/** The environment for the receivers: no PG* variables of the caller's (the flags say everything). */
export function benchEnvironment() {
  const environment = {};
  for (const [name, value] of Object.entries(process.env))
    if (!name.startsWith('PG')) environment[name] = value;
  return environment;
}

export function figuresOf(run) {
  return {
    wallMiBps: run.walBytes / MiB / run.wallSeconds,
    streamingMiBps: run.walBytes / MiB / run.streamingSeconds,
    cpuSecondsPerGiB: run.cpuSeconds / (run.walBytes / GiB),
    peakRssMiB: run.peakRssKiB / 1024,
  };
}

/**
 * @param {{ bytes: number; runs: number; configurations: string[]; diskDirectory?: string; shmDirectory?: string;
 *   oursIs?: 'wal' | 'pg_receivewal'; log: (line: string) => void; server?: any }} options
 */
export async function benchThroughput(options) {
  const pair = receivers({ oursIs: options.oursIs, cpuProfileDirectory: options.cpuProfileDirectory });
  const server = options.server ?? (await startWalServer({ bytes: options.bytes, log: options.log }));
  const places = {
    disk: options.diskDirectory ?? tmpdir(),
    shm: options.shmDirectory ?? '/dev/shm',
  };
  const results = [];
  try {
    for (const key of options.configurations) {
      const configuration = CONFIGURATIONS[key];
      if (configuration === undefined) throw new Error(`unknown configuration "${key}"`);
      const base = places[configuration.place];
      let expected;
      const pairs = [];
      for (let run = 0; run < options.runs; run += 1) {
        const measured = {};
        for (const receiver of pairOrder(pair, run)) {
          const outcome = await streamOnce(server, receiver, {
            base,
            mode: configuration.mode,
            bytes: options.bytes,
          });
          expected ??= outcome.contents;
          const difference = describeDifference(expected, outcome.contents);
          if (difference !== undefined) {
            throw new Error(
              `${receiver.label} wrote something else than pg_receivewal (${configuration.label}): ${difference}`,
            );
          }
          measured[receiver.key] = figuresOf(outcome);
          options.log(
            `${configuration.label} run ${run + 1}/${options.runs} ${receiver.label}: ` +
              `${measured[receiver.key].wallMiBps.toFixed(1)} MiB/s wall, ${measured[receiver.key].streamingMiBps.toFixed(1)} MiB/s streaming, ` +
              `${measured[receiver.key].cpuSecondsPerGiB.toFixed(2)} CPU s/GiB, ${measured[receiver.key].peakRssMiB.toFixed(1)} MiB RSS`,
          );
        }
        pairs.push(measured);
      }
      results.push({
        configuration: key,
        label: configuration.label,
        fileSystem: fileSystemOf(base),
        files: expected.files.length,
        pairs,
      });
    }
  } finally {
    if (options.server === undefined) await server.stop();
  }
  return {
    bytes: Number(server.endposFor(options.bytes) - server.startLsn),
    runs: options.runs,
    labels: labelsOf(pair),
    results,
  };
}

export function labelsOf(pair) {
  return { ours: pair.ours.label, pg: pair.reference.label };
}

const FIGURES = [
  ['wallMiBps', 'MiB/s (whole process)', 1],
  ['streamingMiBps', 'MiB/s (streaming)', 1],
  ['cpuSecondsPerGiB', 'CPU s/GiB (user+sys)', 2],
  ['peakRssMiB', 'peak RSS MiB', 1],
];

export function renderThroughput(report) {
  const rows = [];
  for (const result of report.results) {
    for (const [figure, name, digits] of FIGURES) {
      const ours = summarize(result.pairs.map((pair) => pair.ours[figure]));
      const pg = summarize(result.pairs.map((pair) => pair.pg[figure]));
      const ratio = summarize(result.pairs.map((pair) => pair.ours[figure] / pair.pg[figure]));
      rows.push([
        result.label,
        name,
        formatSummary(ours, digits),
        formatSummary(pg, digits),
        formatSummary(ratio, 2),
      ]);
    }
  }
  return [
    `Throughput: ${formatSize(report.bytes)} of WAL from PostgreSQL 15, ${report.runs} alternating run(s) each; median (min..max); ratio = ours / pg_receivewal, per run pair.`,
    `File systems: ${report.results.map((result) => `${result.label}: ${result.fileSystem}`).join('; ')}.`,
    '',
    markdownTable(['output', 'figure', report.labels.ours, report.labels.pg, 'ratio'], rows),
  ].join('\n');
}
