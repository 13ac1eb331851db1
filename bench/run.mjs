#!/usr/bin/env node
// Benchmarks of `wal receive` against PostgreSQL's pg_receivewal. See bench/README.md.
//
//   node bench/run.mjs throughput|ceiling|sync|memory|all [--full] [--size 64MiB] [--runs 1] ...
//
// Defaults are a quick check (minutes); --full gives the settings of the published table.
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchCeiling, renderCeiling } from './ceiling.mjs';
import { describeMachine } from './lib/machine.mjs';
import { parseSize } from './lib/stats.mjs';
import { benchMemory, renderMemory } from './memory.mjs';
import { benchRestore, renderRestore } from './restore.mjs';
import { benchSync, renderSync } from './sync.mjs';
import { benchThroughput, CONFIGURATIONS, renderThroughput } from './throughput.mjs';

const USAGE = `Usage: node bench/run.mjs <throughput|ceiling|sync|memory|restore|all> [options]

Options:
  --full                 the published settings: 1 GiB, 5 runs; memory 1 and 4 GiB; sync 20 s x 5
  --size SIZE            WAL per run for throughput, ceiling and restore (default 64MiB; --full 1GiB)
  --runs N               alternating runs per receiver (default 1; --full 5; memory: 3)
  --memory-sizes A,B     volumes for the memory benchmark (default 64MiB,256MiB; --full 1GiB,4GiB)
  --configurations LIST  throughput outputs: ${Object.keys(CONFIGURATIONS).join(',')} (default all)
  --disk-dir DIR         where the on-disk outputs go (default the system temp directory)
  --shm-dir DIR          where the memory-backed outputs go (default /dev/shm)
  --duration SECONDS     pgbench duration for sync (default 10; --full 20)
  --clients N            pgbench clients for sync (default 4)
  --ours pg_receivewal   run pg_receivewal on both sides (checks the harness: ratios ~1)
  --cpu-prof DIR         run wal receive under node --cpu-prof, profiles into DIR
                         (read them with node bench/lib/profile-summary.mjs)
  --cli PATH             the bin/run.js of the wal CLI to measure (default apps/cli/bin/run.js;
                         also WAL_BENCH_CLI); e.g. a snapshot copy of the built tree
  --json FILE            also write the raw results as JSON
  --quiet                no per-run lines`;

function fail(message) {
  process.stderr.write(`run.mjs: ${message}\n\n${USAGE}\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      full: { type: 'boolean', default: false },
      size: { type: 'string' },
      runs: { type: 'string' },
      'memory-sizes': { type: 'string' },
      configurations: { type: 'string' },
      'disk-dir': { type: 'string' },
      'shm-dir': { type: 'string' },
      duration: { type: 'string' },
      clients: { type: 'string' },
      ours: { type: 'string' },
      json: { type: 'string' },
      'cpu-prof': { type: 'string' },
      cli: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
} catch (error) {
  fail(error.message);
}
const { values, positionals } = parsed;
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (values.cli !== undefined) process.env.WAL_BENCH_CLI = resolve(values.cli);
const [benchmark] = positionals;
const BENCHMARKS = ['throughput', 'ceiling', 'sync', 'memory', 'restore', 'all'];
if (positionals.length !== 1 || !BENCHMARKS.includes(benchmark)) fail('name one benchmark');

function positiveInteger(text, name) {
  if (!/^[1-9]\d*$/.test(text)) fail(`--${name} must be a positive integer, got "${text}"`);
  return Number(text);
}
function size(text, name) {
  try {
    const bytes = parseSize(text);
    if (bytes < 16 * 1024 * 1024) fail(`--${name} must be at least 16MiB (one segment), got "${text}"`);
    return bytes;
  } catch (error) {
    fail(error.message);
  }
}
if (values.ours !== undefined && values.ours !== 'pg_receivewal' && values.ours !== 'wal') {
  fail(`--ours takes pg_receivewal or wal, got "${values.ours}"`);
}

const settings = {
  bytes: size(values.size ?? (values.full ? '1GiB' : '64MiB'), 'size'),
  runs: values.runs === undefined ? (values.full ? 5 : 1) : positiveInteger(values.runs, 'runs'),
  memoryRuns: values.runs === undefined ? 3 : positiveInteger(values.runs, 'runs'),
  memorySizes: (values['memory-sizes'] ?? (values.full ? '1GiB,4GiB' : '64MiB,256MiB'))
    .split(',')
    .map((text) => size(text, 'memory-sizes')),
  configurations: (values.configurations ?? Object.keys(CONFIGURATIONS).join(',')).split(','),
  diskDirectory: values['disk-dir'],
  shmDirectory: values['shm-dir'],
  durationSeconds: positiveInteger(values.duration ?? (values.full ? '20' : '10'), 'duration'),
  clients: positiveInteger(values.clients ?? '4', 'clients'),
  oursIs: values.ours ?? 'wal',
  cpuProfileDirectory: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
};
for (const key of settings.configurations)
  if (CONFIGURATIONS[key] === undefined) fail(`unknown configuration "${key}"`);

const log = values.quiet
  ? () => {}
  : (line) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const machine = describeMachine();
const sections = [
  `Machine: ${machine.cpu}, ${machine.memory}, Linux ${machine.kernel}, load average at start ${machine.loadAverage}; ` +
    `Node.js ${machine.node}; ${machine.pgReceivewal}; ${machine.walReceive} (commit ${machine.commit}, ${machine.cli}); measured with ${machine.measurement}; ${machine.date}.`,
];
const raw = { machine, settings };
const wanted = benchmark === 'all' ? BENCHMARKS.slice(0, 4) : [benchmark];
for (const name of wanted) {
  log(`== ${name}`);
  if (name === 'throughput') {
    raw.throughput = await benchThroughput({ ...settings, log });
    sections.push(renderThroughput(raw.throughput));
  } else if (name === 'ceiling') {
    raw.ceiling = await benchCeiling({ ...settings, log });
    sections.push(renderCeiling(raw.ceiling));
  } else if (name === 'sync') {
    raw.sync = await benchSync({ ...settings, log });
    sections.push(renderSync(raw.sync));
  } else if (name === 'restore') {
    raw.restore = await benchRestore({ ...settings, log });
    sections.push(renderRestore(raw.restore));
  } else {
    raw.memory = await benchMemory({ ...settings, runs: settings.memoryRuns, log });
    sections.push(renderMemory(raw.memory));
  }
}
process.stdout.write(`${sections.join('\n\n')}\n`);
if (values.json !== undefined) {
  await writeFile(
    values.json,
    `${JSON.stringify(raw, (_key, value) => (typeof value === 'bigint' ? value.toString() : value), 2)}\n`,
  );
}
