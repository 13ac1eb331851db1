#!/usr/bin/env node
// `wal receive -D s3://… --spool DIR` against `wal receive -D DIR`: the same WAL from a PostgreSQL
// 15 slot (bench/lib/wal-server.mjs), into s3rver 3.7.1 on loopback (apps/fake-s3) or into a
// directory, both with fsync. The S3 run's time includes uploading the last segments (the CLI's
// finish after --endpos). Reports wall time, the ratio S3 / directory within each run pair, CPU and
// peak RSS. See bench/README.md, "Object storage".
//
//   node bench/s3.mjs [--size 1GiB] [--runs 3] [--upload-concurrency N] [--disk-dir DIR] [--json FILE]
//
// Needs the built CLI and packages (`npx --yes pnpm@10.34.8 build`).
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { formatLsn } from './lib/lsn.mjs';
import { runMeasured } from './lib/measure.mjs';
import { cliPath, repositoryRoot, STREAMING_STARTED } from './lib/receivers.mjs';
import { formatSize, formatSummary, markdownTable, parseSize, summarize } from './lib/stats.mjs';
import { startWalServer } from './lib/wal-server.mjs';
import { benchEnvironment } from './throughput.mjs';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1GiB' },
    runs: { type: 'string', default: '1' },
    'disk-dir': { type: 'string' },
    // Passed to the S3 run's `wal receive` (its default when absent).
    'upload-concurrency': { type: 'string' },
    json: { type: 'string' },
  },
});
const bytes = parseSize(values.size);
const runs = Number(values.runs);
const base = values['disk-dir'] ?? tmpdir();
const log = (line) => process.stderr.write(`${line}\n`);

const fakeS3Path = join(repositoryRoot, 'apps/fake-s3/dist/index.js');
if (!existsSync(fakeS3Path))
  throw new Error('apps/fake-s3 is not built: run `npx tsc -b apps/fake-s3` first');
const { startS3rver } = await import(fakeS3Path);
const { openS3Store } = await import(join(repositoryRoot, 'packages/s3/dist/index.js'));

const server = await startWalServer({ bytes, log });
const s3 = await startS3rver({
  buckets: ['bench'],
  directory: await mkdtemp(join(base, 'wal-bench-s3rver-')),
});
const results = [];
try {
  for (let round = 0; round < runs; round += 1) {
    const order = round % 2 === 0 ? ['directory', 's3'] : ['s3', 'directory'];
    const measured = {};
    for (const target of order) {
      measured[target] = await streamOnce(target, round);
      const run = measured[target];
      log(
        `run ${round + 1}/${runs} ${target}: ${run.wallSeconds.toFixed(1)} s, CPU ${run.cpuSeconds.toFixed(1)} s, peak RSS ${(run.peakRssKiB / 1024).toFixed(1)} MiB`,
      );
    }
    results.push(measured);
  }
} finally {
  await s3.stop();
  await server.stop();
}
process.stdout.write(render());
if (values.json !== undefined)
  await writeFile(values.json, `${JSON.stringify({ bytes, results }, null, 2)}\n`);

/** One `wal receive` run of `bytes` from a fresh slot, into a directory or the bucket. */
async function streamOnce(target, round) {
  const slot = await server.createRunSlot();
  const directory = await mkdtemp(join(base, 'wal-bench-'));
  const endpos = server.endposFor(bytes);
  const concurrency = values['upload-concurrency'];
  const s3Options = concurrency === undefined ? [] : ['--upload-concurrency', concurrency];
  const location =
    target === 's3' ? [`s3://bench/run-${round}`, '--spool', directory, ...s3Options] : [directory];
  const { cluster } = server;
  const conninfo = `host=${cluster.host} port=${cluster.port} user=${cluster.superuser}`;
  try {
    const args = [cliPath(), 'receive', '-D', ...location, '-d', conninfo, '-w', '-v', '-n'];
    args.push('--endpos', formatLsn(endpos - 1n), '-S', slot);
    const result = await runMeasured(process.execPath, args, {
      markers: { streaming: STREAMING_STARTED },
      env: { ...benchEnvironment(), ...(target === 's3' ? s3.env : {}) },
    });
    if (result.exitCode !== 0)
      throw new Error(`${target} run exited with ${result.exitCode}:\n${result.output}`);
    const segments = Number((endpos - server.startLsn) / BigInt(server.segmentSize));
    const stored = target === 's3' ? await objectNames(`s3://bench/run-${round}`) : await readdir(directory);
    const complete = stored.filter((name) => /^[0-9A-F]{24}$/.test(name));
    if (complete.length !== segments)
      throw new Error(`${target} run stored ${complete.length} segments, expected ${segments}`);
    return { ...result, walBytes: Number(endpos - server.startLsn) };
  } finally {
    await rm(directory, { recursive: true, force: true });
    await server.dropSlot(slot);
  }
}

async function objectNames(url) {
  const store = openS3Store(url, { env: s3.env });
  const names = [];
  for await (const object of store.list()) names.push(object.name);
  store.close();
  return names;
}

function render() {
  const pick = (target, field) => results.map((run) => run[target][field]);
  const ratio = results.map((run) => run.s3.wallSeconds / run.directory.wallSeconds);
  const rows = ['directory', 's3'].map((target) => [
    target === 's3' ? '`-D s3://… --spool DIR` (s3rver)' : '`-D DIR`',
    formatSummary(summarize(pick(target, 'wallSeconds'))),
    formatSummary(
      summarize(results.map((run) => run[target].walBytes / 1024 ** 2 / run[target].wallSeconds)),
    ),
    formatSummary(summarize(pick(target, 'cpuSeconds'))),
    formatSummary(summarize(pick(target, 'peakRssKiB').map((kiB) => kiB / 1024))),
  ]);
  return [
    `${formatSize(bytes)} of WAL, ${runs} run pair(s); S3 wall time / directory wall time: ${formatSummary(summarize(ratio), 2)}`,
    '',
    markdownTable(['target', 'wall s', 'MiB/s', 'CPU s', 'peak RSS MiB'], rows),
    '',
  ].join('\n');
}
