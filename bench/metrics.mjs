#!/usr/bin/env node
// `wal receive` with and without `--metrics-address` (CPU per GiB and MiB/s), scraped while it
// streams. See bench/README.md ("Metrics").
//
//   node bench/metrics.mjs [--server fake|postgres] [--size 1GiB] [--runs 5] [--scrape-ms 250] [--json FILE]
//
// fake: the ceiling benchmark's fake walsender (WAL generated before it listens, so the receiver's
// own cost dominates); postgres: a throwaway PostgreSQL 15 as in the throughput benchmark. Output
// into /dev/shm with --no-sync, runs alternating the order. Nothing here asserts a time.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeServer } from './ceiling.mjs';
import { formatLsn } from './lib/lsn.mjs';
import { runMeasured } from './lib/measure.mjs';
import { cliPath, receiverArguments, STREAMING_STARTED } from './lib/receivers.mjs';
import { formatSize, formatSummary, GiB, MiB, markdownTable, parseSize, summarize } from './lib/stats.mjs';
import { startWalServer } from './lib/wal-server.mjs';
import { benchEnvironment } from './throughput.mjs';

const { values } = parseArgs({
  options: {
    server: { type: 'string', default: 'fake' },
    size: { type: 'string', default: '1GiB' },
    runs: { type: 'string', default: '5' },
    'scrape-ms': { type: 'string', default: '250' },
    json: { type: 'string' },
  },
});
if (values.server !== 'fake' && values.server !== 'postgres')
  throw new Error('--server takes fake or postgres');
const bytes = parseSize(values.size);
const runs = Number(values.runs);
const scrapeMs = Number(values['scrape-ms']);
const log = (line) => process.stderr.write(`${line}\n`);

/** The server side: where to connect, the end position of a run, and what to do between runs. */
async function startServer() {
  if (values.server === 'fake') {
    const server = await startFakeServer(bytes);
    const { host, port, startLsn, endLsn } = server.ready;
    return {
      walBytes: Number(BigInt(endLsn) - BigInt(startLsn)),
      async run(receive) {
        const outcome = await receive({
          host,
          port,
          user: 'postgres',
          endpos: formatLsn(BigInt(endLsn) - 1n),
        });
        await server.next('streamed');
        return outcome;
      },
      stop: () => server.stop(),
    };
  }
  const server = await startWalServer({ bytes, log });
  const endpos = server.endposFor(bytes);
  return {
    walBytes: Number(endpos - server.startLsn),
    async run(receive) {
      const slot = await server.createRunSlot();
      try {
        const { host, port, superuser } = server.cluster;
        return await receive({ host, port, user: superuser, slot, endpos: formatLsn(endpos - 1n) });
      } finally {
        await server.dropSlot(slot);
      }
    },
    stop: () => server.stop(),
  };
}

/** One run of `wal receive`, with --metrics-address and a scraper polling /metrics when `metrics`. */
async function receiveOnce(target, metrics) {
  const directory = await mkdtemp(join('/dev/shm', 'wal-bench-metrics-'));
  const scrapes = { count: 0, timer: undefined };
  try {
    const receiver = { command: process.execPath, prefix: [cliPath(), 'receive'] };
    const args = receiverArguments(receiver, { directory, ...target, mode: 'no-sync' });
    if (metrics) args.push('--metrics-address=127.0.0.1:0');
    const result = await runMeasured(receiver.command, args, {
      env: benchEnvironment(),
      markers: { streaming: STREAMING_STARTED },
      onLine(line) {
        const url = /serving metrics at (\S+)/.exec(line)?.[1];
        if (url === undefined || scrapes.timer !== undefined) return;
        scrapes.timer = setInterval(() => {
          fetch(url)
            .then((response) => response.text())
            .then(() => (scrapes.count += 1))
            .catch(() => undefined);
        }, scrapeMs);
      },
    });
    if (result.exitCode !== 0) throw new Error(`wal receive exited ${result.exitCode}:\n${result.output}`);
    return { result, scrapes: scrapes.count };
  } finally {
    clearInterval(scrapes.timer);
    await rm(directory, { recursive: true, force: true });
  }
}

const server = await startServer();
const results = [];
try {
  for (let run = 0; run < runs; run++) {
    const measured = {};
    for (const side of run % 2 === 0 ? ['plain', 'metrics'] : ['metrics', 'plain']) {
      const { result, scrapes } = await server.run((target) => receiveOnce(target, side === 'metrics'));
      measured[side] = {
        cpuSeconds: result.cpuSeconds,
        cpuSecondsPerGiB: result.cpuSeconds / (server.walBytes / GiB),
        streamingMiBps: server.walBytes / MiB / (result.wallSeconds - result.markerSeconds.streaming),
        peakRssMiB: result.peakRssKiB / 1024,
        scrapes,
      };
    }
    measured.cpuRatio = measured.metrics.cpuSecondsPerGiB / measured.plain.cpuSecondsPerGiB;
    measured.speedRatio = measured.metrics.streamingMiBps / measured.plain.streamingMiBps;
    log(
      `run ${run + 1}/${runs}: plain ${measured.plain.cpuSecondsPerGiB.toFixed(2)} CPU s/GiB ${measured.plain.streamingMiBps.toFixed(0)} MiB/s; ` +
        `--metrics-address ${measured.metrics.cpuSecondsPerGiB.toFixed(2)} CPU s/GiB ${measured.metrics.streamingMiBps.toFixed(0)} MiB/s (${measured.metrics.scrapes} scrapes)`,
    );
    results.push(measured);
  }
} finally {
  await server.stop();
}
const figure = (pick, digits) => formatSummary(summarize(results.map(pick)), digits);
process.stdout.write(
  `\n### wal receive with and without --metrics-address (${formatSize(server.walBytes)}, ${values.server === 'fake' ? 'fake walsender' : 'PostgreSQL 15'}, /dev/shm, --no-sync, ${runs} runs, scraped every ${scrapeMs} ms)\n\n${markdownTable(
    ['', 'wal receive', 'wal receive --metrics-address', 'ratio'],
    [
      [
        'CPU s per run',
        figure((run) => run.plain.cpuSeconds, 2),
        figure((run) => run.metrics.cpuSeconds, 2),
        `${figure((run) => run.metrics.cpuSeconds - run.plain.cpuSeconds, 2)} (difference)`,
      ],
      [
        'CPU s/GiB',
        figure((run) => run.plain.cpuSecondsPerGiB, 2),
        figure((run) => run.metrics.cpuSecondsPerGiB, 2),
        figure((run) => run.cpuRatio, 2),
      ],
      [
        'MiB/s (streaming)',
        figure((run) => run.plain.streamingMiBps, 0),
        figure((run) => run.metrics.streamingMiBps, 0),
        figure((run) => run.speedRatio, 2),
      ],
      [
        'peak RSS MiB',
        figure((run) => run.plain.peakRssMiB, 0),
        figure((run) => run.metrics.peakRssMiB, 0),
        '',
      ],
    ],
  )}\n`,
);
if (values.json !== undefined)
  await writeFile(values.json, `${JSON.stringify({ settings: values, results }, null, 2)}\n`);
