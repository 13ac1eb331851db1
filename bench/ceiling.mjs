// Ceiling without a server: the fake walsender sends pregenerated WAL as fast as it can over
// loopback into `wal receive` (/dev/shm, --no-sync), next to a raw socket read of the same frames
// (the loopback limit of this machine) and pg_receivewal for reference; runs alternate raw, ours, pg.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describeDifference, digestDirectory } from './lib/digest.mjs';
import { formatLsn } from './lib/lsn.mjs';
import { runMeasured } from './lib/measure.mjs';
import { pairOrder, receiverArguments, receivers, STREAMING_STARTED } from './lib/receivers.mjs';
import { formatSize, formatSummary, GiB, MiB, markdownTable, summarize } from './lib/stats.mjs';
import { benchEnvironment } from './throughput.mjs';

const here = import.meta.dirname ?? new URL('.', import.meta.url).pathname;

/** The fake server child; `next(event)` waits for its next line of that event. */
export async function startFakeServer(bytes) {
  const child = spawn(
    process.execPath,
    [join(here, 'lib/fake-server-process.mjs'), '--bytes', String(bytes)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const queued = [];
  const waiting = [];
  let exited;
  child.on('exit', (code, signal) => {
    exited = `the fake walsender exited (${code ?? signal})`;
    for (const waiter of waiting.splice(0)) waiter.reject(new Error(exited));
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const event = JSON.parse(line);
    const index = waiting.findIndex((waiter) => waiter.name === event.event || event.event === 'error');
    if (index >= 0) waiting.splice(index, 1)[0].resolve(event);
    else queued.push(event);
  });
  const next = (name) => {
    const index = queued.findIndex((event) => event.event === name || event.event === 'error');
    if (index >= 0) return Promise.resolve(queued.splice(index, 1)[0]);
    if (exited !== undefined) return Promise.reject(new Error(exited));
    return new Promise((resolve, reject) => waiting.push({ name, resolve, reject }));
  };
  const ready = await next('ready');
  return {
    ready,
    async next(name) {
      const event = await next(name);
      if (event.event === 'error') throw new Error(`fake walsender: ${event.message}`);
      return event;
    },
    stop: () =>
      new Promise((resolve) => {
        if (exited !== undefined) return resolve();
        child.once('exit', resolve);
        child.kill('SIGTERM');
      }),
  };
}

/** @param {{ bytes: number; runs: number; shmDirectory?: string; oursIs?: string; log: (line: string) => void }} options */
export async function benchCeiling(options) {
  const pair = receivers({ oursIs: options.oursIs, cpuProfileDirectory: options.cpuProfileDirectory });
  const server = await startFakeServer(options.bytes);
  const walBytes = Number(BigInt(server.ready.endLsn) - BigInt(server.ready.startLsn));
  options.log(
    `fake walsender on port ${server.ready.port}, ${formatSize(walBytes)} pregenerated in ${server.ready.generateSeconds.toFixed(1)} s`,
  );
  const base = options.shmDirectory ?? '/dev/shm';
  const runs = [];
  let expected;
  try {
    for (let run = 0; run < options.runs; run += 1) {
      const measured = {};
      const raw = await runMeasured(process.execPath, [
        join(here, 'lib/raw-reader-process.mjs'),
        '--port',
        String(server.ready.rawPort),
      ]);
      if (raw.exitCode !== 0) throw new Error(`raw reader failed:\n${raw.output}`);
      const read = JSON.parse(raw.output.trim().split('\n').at(-1));
      await server.next('raw-sent');
      measured.raw = {
        streamingMiBps: walBytes / MiB / read.seconds,
        wallMiBps: walBytes / MiB / raw.wallSeconds,
        cpuSecondsPerGiB: raw.cpuSeconds / (walBytes / GiB),
        peakRssMiB: raw.peakRssKiB / 1024,
      };
      for (const receiver of pairOrder(pair, run)) {
        const directory = await mkdtemp(join(base, 'wal-bench-ceiling-'));
        try {
          const args = receiverArguments(receiver, {
            directory,
            host: server.ready.host,
            port: server.ready.port,
            user: 'postgres',
            endpos: formatLsn(BigInt(server.ready.endLsn) - 1n),
            mode: 'no-sync',
          });
          const result = await runMeasured(receiver.command, args, {
            env: benchEnvironment(),
            markers: { streaming: STREAMING_STARTED },
          });
          if (result.exitCode !== 0)
            throw new Error(
              `${receiver.label} exited with ${result.exitCode ?? result.signal}:\n${result.output}`,
            );
          const streamed = await server.next('streamed');
          const contents = await digestDirectory(directory);
          expected ??= contents;
          const difference = describeDifference(expected, contents);
          if (difference !== undefined)
            throw new Error(`${receiver.label} wrote something else than the first run: ${difference}`);
          measured[receiver.key] = {
            streamingMiBps: walBytes / MiB / streamed.seconds,
            wallMiBps: walBytes / MiB / result.wallSeconds,
            cpuSecondsPerGiB: result.cpuSeconds / (walBytes / GiB),
            peakRssMiB: result.peakRssKiB / 1024,
          };
        } finally {
          await rm(directory, { recursive: true, force: true });
        }
      }
      options.log(
        `run ${run + 1}/${options.runs}: raw ${measured.raw.streamingMiBps.toFixed(0)} MiB/s, ` +
          `${pair.ours.label} ${measured.ours.streamingMiBps.toFixed(0)} MiB/s (process ${measured.ours.wallMiBps.toFixed(0)}), ` +
          `${pair.reference.label} ${measured.pg.streamingMiBps.toFixed(0)} MiB/s`,
      );
      runs.push(measured);
    }
  } finally {
    await server.stop();
  }
  return { bytes: walBytes, runs, labels: { ours: pair.ours.label, pg: pair.reference.label } };
}

export function renderCeiling(report) {
  const figure = (name, digits) => (key) =>
    formatSummary(summarize(report.runs.map((run) => run[key][name])), digits);
  const ratio = (name) => (key) =>
    formatSummary(summarize(report.runs.map((run) => run[key][name] / run.raw[name])), 2);
  const rows = [];
  for (const [key, label] of [
    ['ours', report.labels.ours],
    ['pg', report.labels.pg],
    ['raw', 'raw socket read (loopback limit)'],
  ]) {
    rows.push([
      label,
      figure('streamingMiBps', 0)(key),
      ratio('streamingMiBps')(key),
      figure('wallMiBps', 0)(key),
      figure('cpuSecondsPerGiB', 2)(key),
      figure('peakRssMiB', 1)(key),
    ]);
  }
  return [
    `Ceiling: ${formatSize(report.bytes)} of pregenerated WAL from the fake walsender over loopback into /dev/shm with --no-sync, ${report.runs.length} alternating run(s); ` +
      "streaming = first XLogData sent to the client's CopyDone (raw: connect to end of stream); whole process includes start-up.",
    '',
    markdownTable(
      ['reader', 'MiB/s (streaming)', 'ratio to raw', 'MiB/s (whole process)', 'CPU s/GiB', 'peak RSS MiB'],
      rows,
    ),
  ].join('\n');
}
