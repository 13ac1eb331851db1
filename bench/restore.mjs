// `wal restore` as restore_command against `cp` (bench/README.md, "Restore"). One PostgreSQL 15
// server writes the WAL; `wal receive` archives it plain and -Z lz4; base backups taken without WAL
// before the WAL was written recover it through each restore_command in turn, in alternating order.
import { spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatLsn, parseLsn } from './lib/lsn.mjs';
import { cliPath } from './lib/receivers.mjs';
import { formatSize, formatSummary, markdownTable, summarize } from './lib/stats.mjs';
import { loadPgCluster } from './lib/wal-server.mjs';

/** The restore_commands compared; `cp` from the plain archive is the reference. */
export const RESTORE_CONFIGURATIONS = {
  cp: { label: 'cp, plain archive', archive: 'plain', command: (archive) => `cp '${archive}/%f' '%p'` },
  plain: { label: 'wal restore, plain archive', archive: 'plain', wal: [] },
  'plain-prefetch': {
    label: 'wal restore --prefetch=8, plain archive',
    archive: 'plain',
    wal: ['--prefetch=8'],
  },
  lz4: { label: 'wal restore, lz4 archive', archive: 'lz4', wal: [] },
  'lz4-prefetch': { label: 'wal restore --prefetch=8, lz4 archive', archive: 'lz4', wal: ['--prefetch=8'] },
  // Not a configuration we ship: what serving prefetched segments without starting Node.js would
  // give (a shell `mv` from the spool, `wal restore` only on a miss). See docs/adr/0008-wal-restore.md.
  'lz4-prefetch-shell': {
    label: 'sh: mv from spool, else wal restore --prefetch=8, lz4 archive',
    archive: 'lz4',
    wal: ['--prefetch=8'],
    shell: true,
  },
};

function restoreCommand(configuration, archive, spool) {
  if (configuration.command !== undefined) return configuration.command(archive);
  const prefetch = configuration.wal.length > 0 ? [...configuration.wal, `--spool=${spool}`] : [];
  const wal = [process.execPath, cliPath(), 'restore', ...prefetch, '-D', archive, '%f', '%p'];
  const command = wal.map((word) => (word.startsWith('%') ? word : `'${word}'`)).join(' ');
  if (configuration.shell) return `mv '${spool}/%f' %p 2>/dev/null || ${command}`;
  return command;
}

/** Readable (archives) or owned (spools) by the server's user: the server does not run as root. */
function shareWithServer(path, serverUser, own = false) {
  if (own && serverUser.uid !== undefined) chownSync(path, serverUser.uid, serverUser.gid);
  chmodSync(path, 0o755);
  if (!own) for (const name of readdirSync(path)) chmodSync(join(path, name), 0o644);
}

/**
 * Row inserts with half-random text: WAL that replay has work to do with and that lz4 compresses
 * about as real table WAL does (not the all-'x' logical messages of the receive benchmarks).
 */
async function writeWal(cluster, bytes) {
  await cluster.sql('CREATE TABLE bench_rows (id bigint, payload text)');
  const [start] = await cluster.sql('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  const wanted = parseLsn(start.lsn) + BigInt(bytes);
  for (;;) {
    const [row] = await cluster.sql('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    if (parseLsn(row.lsn) >= wanted) break;
    await cluster.sql(
      `INSERT INTO bench_rows SELECT g, md5(random()::text) || repeat('-', 40) || md5(g::text) FROM generate_series(1, 50000) g`,
    );
  }
  const [switched] = await cluster.sql('SELECT pg_switch_wal()::text AS lsn');
  const [flushed] = await cluster.sql('SELECT pg_current_wal_flush_lsn()::text AS lsn');
  return { start: start.lsn, end: flushed.lsn, switched: switched.lsn };
}

/** Archives [slot's restart, end) with `wal receive`, plain or -Z lz4, as whole segments. */
function archiveWith(cluster, directory, slot, end, compress) {
  const conninfo = `host=${cluster.socketDir} port=${cluster.port} user=${cluster.superuser}`;
  const args = [cliPath(), 'receive', '-D', directory, '-d', conninfo, '-w', '-n', '-S', slot];
  args.push('--endpos', formatLsn(end - 1n), ...compress);
  const result = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`wal receive failed (${result.status}): ${result.stderr}`);
}

/** Milliseconds from the postmaster's first log line to "ready to accept connections" after promotion. */
function recoveryMilliseconds(logPath) {
  const lines = readFileSync(logPath, 'utf8').split('\n');
  const stamp = (line) => Date.parse(`${line.slice(0, 23).replace(' ', 'T')}Z`);
  const first = lines.find((line) => /LOG: {2}starting PostgreSQL/.test(line));
  const ready = lines.find((line) => /database system is ready to accept connections/.test(line));
  if (first === undefined || ready === undefined)
    throw new Error(`no start or end of recovery in ${logPath}`);
  return stamp(ready) - stamp(first);
}

/**
 * @param {{ bytes: number; runs: number; restoreConfigurations?: string[]; log: (line: string) => void }} settings
 */
export async function benchRestore(settings) {
  const { startCluster, startStandby, serverUser } = await loadPgCluster();
  const keys = settings.restoreConfigurations ?? Object.keys(RESTORE_CONFIGURATIONS);
  const user = serverUser();
  const base = mkdtempSync(join(tmpdir(), 'wal-bench-restore-'));
  const cluster = await startCluster({
    version: 15,
    segmentSizeMb: 16,
    settings: {
      max_wal_size: '64GB',
      checkpoint_timeout: '1d',
      wal_init_zero: 'off',
      wal_compression: 'off',
    },
  });
  try {
    await cluster.sql("SELECT pg_create_physical_replication_slot('bench_plain', true)");
    await cluster.sql("SELECT pg_create_physical_replication_slot('bench_lz4', true)");
    const backups = [];
    for (let run = 0; run < settings.runs; run += 1) {
      for (const key of keys) {
        const backup = await startStandby(cluster, {
          copyWal: false,
          signal: 'recovery',
          stream: false,
          start: false,
        });
        backups.push({ run, key, backup });
      }
    }
    const wal = await writeWal(cluster, settings.bytes);
    settings.log(`wrote WAL ${wal.start}..${wal.end}`);
    const archives = { plain: join(base, 'plain'), lz4: join(base, 'lz4') };
    mkdirSync(archives.plain);
    mkdirSync(archives.lz4);
    archiveWith(cluster, archives.plain, 'bench_plain', parseLsn(wal.end), []);
    archiveWith(cluster, archives.lz4, 'bench_lz4', parseLsn(wal.end), ['-Z', 'lz4']);
    chmodSync(base, 0o755);
    for (const archive of Object.values(archives)) shareWithServer(archive, user);
    const sizes = Object.fromEntries(
      Object.entries(archives).map(([name, path]) => [
        name,
        readdirSync(path).reduce((total, file) => total + statSync(join(path, file)).size, 0),
      ]),
    );
    settings.log(`archives: plain ${formatSize(sizes.plain)}, lz4 ${formatSize(sizes.lz4)}`);
    return await recoverAll(backups, keys, archives, base, user, settings, sizes);
  } finally {
    await cluster.stop();
    rmSync(base, { recursive: true, force: true });
  }
}

async function recoverAll(backups, keys, archives, base, user, settings, sizes) {
  const times = Object.fromEntries(keys.map((key) => [key, []]));
  const ratios = Object.fromEntries(keys.map((key) => [key, []]));
  for (let run = 0; run < settings.runs; run += 1) {
    const order = run % 2 === 0 ? keys : [...keys].reverse();
    const thisRun = {};
    for (const key of order) {
      const { backup } = backups.find((entry) => entry.run === run && entry.key === key);
      const configuration = RESTORE_CONFIGURATIONS[key];
      const spool = join(base, `spool-${run}-${key}`);
      mkdirSync(spool);
      shareWithServer(spool, user, true);
      const command = restoreCommand(configuration, archives[configuration.archive], spool);
      appendFileSync(
        join(backup.dataDir, 'postgresql.conf'),
        `\nrestore_command = '${command.replaceAll("'", "''")}'\n`,
      );
      await backup.start();
      await backup.waitFor('SELECT NOT pg_is_in_recovery()', 1_800_000);
      const milliseconds = recoveryMilliseconds(backup.logPath);
      await backup.stop();
      thisRun[key] = milliseconds;
      times[key].push(milliseconds / 1000);
      settings.log(`run ${run + 1}: ${configuration.label}: ${(milliseconds / 1000).toFixed(2)} s`);
    }
    for (const key of keys) ratios[key].push(thisRun[key] / thisRun.cp);
  }
  return { bytes: settings.bytes, runs: settings.runs, sizes, keys, times, ratios };
}

export function renderRestore(result) {
  const rows = result.keys.map((key) => [
    RESTORE_CONFIGURATIONS[key].label,
    formatSummary(summarize(result.times[key]), 2),
    result.ratios[key].length > 0 && result.keys.includes('cp')
      ? formatSummary(summarize(result.ratios[key]), 2)
      : 'n/a',
  ]);
  return [
    `Restore: a PostgreSQL 15 server recovers ${formatSize(result.bytes)} of WAL (16 MiB segments) from a base backup, ${result.runs} run(s) per restore_command; archives plain ${formatSize(result.sizes.plain)}, lz4 ${formatSize(result.sizes.lz4)}.`,
    markdownTable(['restore_command', 'recovery s', 'time / cp (same run)'], rows),
  ].join('\n\n');
}
