// The two receivers under test and how to call them with the same pg_receivewal flags.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
/**
 * `wal receive` is `node <cli> receive`; WAL_BENCH_CLI (or run.mjs --cli) points at another copy,
 * e.g. a snapshot of the built tree, so work in progress elsewhere cannot change it mid-benchmark.
 */
export function cliPath() {
  return resolve(process.env.WAL_BENCH_CLI ?? join(repositoryRoot, 'apps/cli/bin/run.js'));
}

/** Debian's PostgreSQL 15 client programs, or $WAL_PG_CLIENT_BIN (as @wal/pg-cluster's clientToolsPath). */
export function clientToolsDirectory() {
  return process.env.WAL_PG_CLIENT_BIN ?? '/usr/lib/postgresql/15/bin';
}

export function clientTool(name) {
  const path = join(clientToolsDirectory(), name);
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing: install PostgreSQL's client programs (Debian: postgresql-15) or point WAL_PG_CLIENT_BIN at them`,
    );
  }
  return path;
}

/**
 * `reference` is pg_receivewal; `ours` is `wal receive`, or pg_receivewal again when `oursIs` is
 * 'pg_receivewal' (an A-vs-A run that checks the harness itself: its ratios should be about 1).
 * @param {{ oursIs?: 'wal' | 'pg_receivewal'; cpuProfileDirectory?: string }} options
 */
export function receivers(options = {}) {
  const reference = { key: 'pg', label: 'pg_receivewal', command: clientTool('pg_receivewal'), prefix: [] };
  if (options.oursIs === 'pg_receivewal') {
    return {
      reference,
      ours: { ...reference, key: 'ours', label: 'pg_receivewal (standing in for wal receive)' },
    };
  }
  const cli = cliPath();
  // bin/run.js runs `wal receive` from the bundle the CLI's build ends with (apps/cli/scripts).
  if (!existsSync(join(dirname(cli), '../dist/receive-entry.bundle.js'))) {
    throw new Error(
      `${cli}: the CLI is not built: run \`npx --yes pnpm@10.34.8 run build\` in the repository root first`,
    );
  }
  const profile =
    options.cpuProfileDirectory === undefined
      ? []
      : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDirectory}`];
  // Extra Node.js flags for experiments, e.g. WAL_BENCH_NODE_FLAGS='--v8-pool-size=1'.
  const nodeFlags = (process.env.WAL_BENCH_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== '');
  return {
    reference,
    ours: {
      key: 'ours',
      label: 'wal receive',
      command: process.execPath,
      prefix: [...nodeFlags, ...profile, cli, 'receive'],
    },
  };
}

/**
 * pg_receivewal's command line (the same for both).
 * @param {{ directory: string; host: string; port: number; user: string; applicationName?: string;
 *   endpos?: string; slot?: string; mode: 'fsync' | 'no-sync' | 'synchronous'; noLoop?: boolean }} run
 */
export function receiverArguments(receiver, run) {
  const conninfo = [`host=${run.host}`, `port=${run.port}`, `user=${run.user}`];
  if (run.applicationName !== undefined) conninfo.push(`application_name=${run.applicationName}`);
  const args = [...receiver.prefix, '-D', run.directory, '-d', conninfo.join(' '), '-w', '-v'];
  if (run.noLoop !== false) args.push('-n');
  if (run.endpos !== undefined) args.push('--endpos', run.endpos);
  if (run.slot !== undefined) args.push('-S', run.slot);
  if (run.mode === 'no-sync') args.push('--no-sync');
  if (run.mode === 'synchronous') args.push('--synchronous');
  return args;
}

/** The line both print (with -v) when COPY starts: its time splits start-up from streaming. */
export const STREAMING_STARTED = /starting log streaming at/;

/**
 * The order of the two receivers in run pair `index`: pg_receivewal first in even pairs, ours first
 * in odd ones (A B, B A, A B, ...). Whichever runs second in a pair ran measurably faster in an
 * A-vs-A check (pg_receivewal against itself: +3..10 %, the server's WAL and the walsender warm), so
 * a fixed order would bias every ratio the same way; swapping it each pair cancels that out.
 */
export function pairOrder(pair, index) {
  return index % 2 === 0 ? [pair.reference, pair.ours] : [pair.ours, pair.reference];
}
