#!/usr/bin/env node
// `wal verify` against pg_waldump --quiet over the same archive, `wal receive --verify` against
// `wal receive` (CPU per GiB), and the CRC-32C alone. See bench/README.md ("Verification").
//
//   node bench/verify.mjs [--size 256MiB] [--runs 3] [--dir DIR] [--json FILE] [--node-rs-crc32 DIR]
//
// The archive is WAL from @wal/protocol's generator (XLOG NOOP records of mixed sizes laid out as
// PostgreSQL 15 lays them out, which pg_waldump 15 reads: see its pg-waldump test), in 16 MiB
// segments, because pg_waldump 15 reads only PostgreSQL 15 WAL. Nothing here asserts a time.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeServer } from './ceiling.mjs';
import { formatLsn } from './lib/lsn.mjs';
import { runMeasured } from './lib/measure.mjs';
import { clientTool, cliPath, receiverArguments, repositoryRoot } from './lib/receivers.mjs';
import { formatSize, formatSummary, GiB, MiB, markdownTable, parseSize, summarize } from './lib/stats.mjs';
import { benchEnvironment } from './throughput.mjs';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '256MiB' },
    runs: { type: 'string', default: '3' },
    dir: { type: 'string' },
    json: { type: 'string' },
    // A directory whose node_modules holds @node-rs/crc32, to measure its crc32c next to ours.
    'node-rs-crc32': { type: 'string' },
  },
});
const bytes = parseSize(values.size);
const runs = Number(values.runs);
const SEGMENT = 16 * MiB;
const log = (line) => process.stderr.write(`${line}\n`);
const wal = await import(join(repositoryRoot, 'packages/protocol/dist/wal-format/index.js'));
const protocol = await import(join(repositoryRoot, 'packages/protocol/dist/index.js'));

async function makeArchive(directory) {
  const generator = wal.createWalGenerator({
    seed: 15,
    segmentSize: SEGMENT,
    timeline: 1,
    systemId: 7400000000000000015n,
    serverVersion: 15,
  });
  const segments = Math.ceil(bytes / SEGMENT);
  for (let segment = 1n; segment <= BigInt(segments); segment++) {
    await writeFile(
      join(directory, protocol.walFileName(1, segment, SEGMENT)),
      generator.segmentBytes(segment),
    );
  }
  return {
    start: BigInt(SEGMENT),
    end: BigInt(SEGMENT) * BigInt(segments + 1),
    walBytes: segments * SEGMENT,
  };
}

async function verifyAgainstWaldump(directory, archive) {
  const sides = {
    verify: [process.execPath, [cliPath(), 'verify', '-D', directory]],
    waldump: [
      clientTool('pg_waldump'),
      ['--quiet', '--path', directory, '--start', formatLsn(archive.start), '--end', formatLsn(archive.end)],
    ],
  };
  const results = [];
  for (let run = 0; run < runs; run++) {
    const order = run % 2 === 0 ? ['verify', 'waldump'] : ['waldump', 'verify'];
    const measured = {};
    for (const side of order) {
      const [command, args] = sides[side];
      const result = await runMeasured(command, args, { env: benchEnvironment() });
      // pg_waldump ends at --end with 0; `wal verify` exits 0 for a sound archive.
      if (result.exitCode !== 0) throw new Error(`${side} exited ${result.exitCode}:\n${result.output}`);
      measured[side] = {
        wallSeconds: result.wallSeconds,
        cpuSeconds: result.cpuSeconds,
        MiBps: archive.walBytes / MiB / result.wallSeconds,
        peakRssMiB: result.peakRssKiB / 1024,
      };
    }
    measured.ratio = measured.waldump.wallSeconds / measured.verify.wallSeconds;
    log(
      `run ${run + 1}/${runs}: wal verify ${measured.verify.MiBps.toFixed(0)} MiB/s, pg_waldump ${measured.waldump.MiBps.toFixed(0)} MiB/s`,
    );
    results.push(measured);
  }
  return results;
}

async function receiveWithAndWithoutVerify() {
  const server = await startFakeServer(bytes);
  const walBytes = Number(BigInt(server.ready.endLsn) - BigInt(server.ready.startLsn));
  const receiver = { command: process.execPath, prefix: [cliPath(), 'receive'] };
  const results = [];
  try {
    for (let run = 0; run < runs; run++) {
      const measured = {};
      for (const side of run % 2 === 0 ? ['plain', 'verify'] : ['verify', 'plain']) {
        const directory = await mkdtemp(join('/dev/shm', 'wal-bench-verify-'));
        try {
          const args = receiverArguments(receiver, {
            directory,
            host: server.ready.host,
            port: server.ready.port,
            user: 'postgres',
            endpos: formatLsn(BigInt(server.ready.endLsn) - 1n),
            mode: 'no-sync',
          });
          if (side === 'verify') args.push('--verify');
          const result = await runMeasured(receiver.command, args, { env: benchEnvironment() });
          if (result.exitCode !== 0)
            throw new Error(`wal receive (${side}) exited ${result.exitCode}:\n${result.output}`);
          await server.next('streamed');
          measured[side] = {
            cpuSecondsPerGiB: result.cpuSeconds / (walBytes / GiB),
            wallSeconds: result.wallSeconds,
          };
        } finally {
          await rm(directory, { recursive: true, force: true });
        }
      }
      measured.ratio = measured.verify.cpuSecondsPerGiB / measured.plain.cpuSecondsPerGiB;
      log(
        `run ${run + 1}/${runs}: wal receive ${measured.plain.cpuSecondsPerGiB.toFixed(2)} CPU s/GiB, --verify ${measured.verify.cpuSecondsPerGiB.toFixed(2)}`,
      );
      results.push(measured);
    }
  } finally {
    await server.stop();
  }
  return { walBytes, results };
}

/** MiB/s of the JavaScript CRC-32C, and of @node-rs/crc32's crc32c when it can be loaded. */
function crcSpeeds() {
  const data = Buffer.alloc(64 * MiB, 0x5a);
  for (let index = 0; index < data.length; index += 61) data[index] = index & 0xff;
  const time = (compute) => {
    compute();
    const started = process.hrtime.bigint();
    for (let round = 0; round < 3; round++) compute();
    return (3 * data.length) / MiB / (Number(process.hrtime.bigint() - started) / 1e9);
  };
  const speeds = { javascript: time(() => wal.crc32c(data)) };
  const nativePath = values['node-rs-crc32'];
  if (nativePath !== undefined) {
    const native = createRequire(join(nativePath, 'x.js'))('@node-rs/crc32');
    if (native.crc32c(data) !== wal.crc32c(data))
      throw new Error('@node-rs/crc32 crc32c disagrees with ours');
    speeds.native = time(() => native.crc32c(data));
  }
  return speeds;
}

const base = values.dir ?? (await mkdtemp(join(tmpdir(), 'wal-bench-archive-')));
await mkdir(base, { recursive: true });
try {
  log(`generating ${formatSize(bytes)} of PostgreSQL 15 WAL in 16 MiB segments into ${base}`);
  const archive = await makeArchive(base);
  const crc = crcSpeeds();
  log(
    `CRC-32C: JavaScript ${crc.javascript.toFixed(0)} MiB/s${crc.native === undefined ? '' : `, @node-rs/crc32 ${crc.native.toFixed(0)} MiB/s`}`,
  );
  const versus = await verifyAgainstWaldump(base, archive);
  const receive = await receiveWithAndWithoutVerify();
  const figure = (list, pick, digits = 1) => formatSummary(summarize(list.map(pick)), digits);
  process.stdout.write(
    `\n### wal verify vs pg_waldump --quiet (${formatSize(archive.walBytes)}, ${runs} runs)\n\n${markdownTable(
      ['', 'wal verify', 'pg_waldump --quiet'],
      [
        [
          'MiB/s (whole process)',
          figure(versus, (run) => run.verify.MiBps, 0),
          figure(versus, (run) => run.waldump.MiBps, 0),
        ],
        [
          'CPU s',
          figure(versus, (run) => run.verify.cpuSeconds, 2),
          figure(versus, (run) => run.waldump.cpuSeconds, 2),
        ],
        [
          'peak RSS MiB',
          figure(versus, (run) => run.verify.peakRssMiB, 0),
          figure(versus, (run) => run.waldump.peakRssMiB, 0),
        ],
        ['speed vs pg_waldump', figure(versus, (run) => run.ratio, 2), '1'],
      ],
    )}\n\n### wal receive --verify (${formatSize(receive.walBytes)}, fake walsender, /dev/shm, --no-sync)\n\n${markdownTable(
      ['', 'wal receive', 'wal receive --verify'],
      [
        [
          'CPU s/GiB',
          figure(receive.results, (run) => run.plain.cpuSecondsPerGiB, 2),
          figure(receive.results, (run) => run.verify.cpuSecondsPerGiB, 2),
        ],
        ['CPU ratio', '1', figure(receive.results, (run) => run.ratio, 2)],
      ],
    )}\n\nCRC-32C over 64 MiB: JavaScript (slicing-by-8) ${crc.javascript.toFixed(0)} MiB/s` +
      `${crc.native === undefined ? '' : `; @node-rs/crc32 crc32c ${crc.native.toFixed(0)} MiB/s`}\n`,
  );
  if (values.json !== undefined)
    await writeFile(values.json, JSON.stringify({ versus, receive, crc }, null, 2));
} finally {
  if (values.dir === undefined) await rm(base, { recursive: true, force: true });
}
