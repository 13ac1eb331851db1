import { randomBytes } from 'node:crypto';
import { appendFile, chown, copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { forgetLeftover, trackLeftover } from './cleanup.js';
import { Cluster } from './cluster.js';
import { ADMIN_ROLE, quoteLiteral, renderSettings, resolveClusterOptions } from './configuration.js';
import { ClusterError } from './errors.js';
import { giveToServerUser, serverUser } from './server-user.js';

export interface StandbyOptions {
  /** Physical replication slot on the primary the standby streams from (created; default a random name). */
  slot?: string;
  /** postgresql.conf settings of the standby, after (so overriding) the ones copied from the primary. */
  settings?: Record<string, string>;
  /** Copy the WAL written during the backup into pg_wal (default true); false is `pg_basebackup -X none`. */
  copyWal?: boolean;
  /** The signal file: 'standby' (default) or 'recovery' (archive recovery that ends in promotion). */
  signal?: 'standby' | 'recovery';
  /** Stream from the primary through a slot (default true); false: no slot, no primary_conninfo. */
  stream?: boolean;
  /** Start the server (default true); false leaves it for `cluster.start()`, e.g. once an archive is complete. */
  start?: boolean;
}

// What pg_basebackup leaves out of a base backup (basebackup.c: excludeDirContents, excludeFiles):
// runtime state that a new server must not inherit.
const EXCLUDED_DIRECTORY_CONTENTS = new Set([
  'pg_wal',
  'pg_stat_tmp',
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_subtrans',
]);
const EXCLUDED_FILES = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'pg_internal.init',
  'backup_label',
  'tablespace_map',
  'postgresql.auto.conf.tmp',
  'current_logfiles',
  'standby.signal',
  'recovery.signal',
]);

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * Copies a live data directory file by file. Files may disappear while the server runs (a
 * dropped table, a finished temporary file); the backup_label's redo point makes up for that.
 */
async function copyDataDirectory(source: string, target: string, depth = 0): Promise<void> {
  await mkdir(target, { recursive: true, mode: 0o700 });
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(source, { withFileTypes: true });
  } catch (error) {
    if (isMissing(error)) return;
    throw error;
  }
  for (const entry of entries) {
    const from = join(source, entry.name);
    const to = join(target, entry.name);
    if (entry.isDirectory()) {
      if (depth === 0 && EXCLUDED_DIRECTORY_CONTENTS.has(entry.name)) {
        await mkdir(to, { mode: 0o700 });
        if (entry.name === 'pg_wal') await mkdir(join(to, 'archive_status'), { mode: 0o700 });
        continue;
      }
      await copyDataDirectory(from, to, depth + 1);
    } else if (entry.isFile()) {
      if (EXCLUDED_FILES.has(entry.name)) continue;
      try {
        await copyFile(from, to);
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
    }
  }
}

/** WAL segments and history files the primary holds now (the backup's WAL, as `-X fetch` takes). */
async function copyWal(source: string, target: string): Promise<void> {
  for (const name of await readdir(source)) {
    if (!/^[0-9A-F]{24}$|^[0-9A-F]{8}\.history$/.test(name)) continue;
    try {
      await copyFile(join(source, name), join(target, name));
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  }
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) await chownTree(child, uid, gid);
    else await chown(child, uid, gid);
  }
}

/**
 * Starts a hot standby streaming from `primary`: a non-exclusive base backup taken with the
 * low-level API (pg_backup_start/stop, pg_start_backup/pg_stop_backup on 14) and a file copy, so
 * it works for every version without pg_basebackup of the same major version. The standby
 * streams through a physical slot over the primary's Unix socket; it does not serve TLS.
 */
export async function startStandby(primary: Cluster, options: StandbyOptions = {}): Promise<Cluster> {
  const slot = standbySlotName(primary, options);
  const settingsCheck = resolveClusterOptions({ version: primary.version, settings: options.settings ?? {} });

  const baseDir = await mkdtemp(join(tmpdir(), 'wal-pg-'));
  const leftover = trackLeftover(baseDir);
  const standby = new Cluster({
    binaries: primary.binaries,
    baseDir,
    superuserPassword: primary.superuserPassword,
    segmentSize: primary.segmentSize,
    leftover,
    customListenAddresses: 'listen_addresses' in settingsCheck.settings,
  });
  const session = new pg.Client({
    host: primary.socketDir,
    port: primary.port,
    user: ADMIN_ROLE,
    database: 'postgres',
  });
  session.on('error', () => undefined);
  let slotCreated = false;
  try {
    await giveToServerUser(baseDir);
    await mkdir(standby.socketDir, { mode: 0o700 });
    await giveToServerUser(standby.socketDir);

    await session.connect();
    if (options.stream !== false) {
      // Reserve WAL before the backup starts, so everything from its redo point stays available.
      await session.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
      slotCreated = true;
    }
    await takeBaseBackup(session, primary, standby, options);

    await configureStandby(
      primary,
      standby,
      options.stream === false ? undefined : slot,
      settingsCheck.settings,
    );

    if (options.start !== false) await standby.startServer(false);
    return standby;
  } catch (error) {
    await standby.stop().catch(() => undefined);
    if (slotCreated) {
      // The session may have died with the failure; a fresh admin connection drops the slot.
      await primary.sql('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
    }
    forgetLeftover(leftover);
    await rm(baseDir, { recursive: true, force: true }).catch(() => undefined);
    if (error instanceof ClusterError) throw error;
    throw new ClusterError(
      'WAL_ERR_CLUSTER_STANDBY',
      `Creating a standby of ${primary.description} failed: ${(error as Error).message}`,
      { cause: error },
    );
  } finally {
    await session.end().catch(() => undefined);
  }
}

/** The slot the standby streams through, after checking that the primary can serve one. */
function standbySlotName(primary: Cluster, options: StandbyOptions): string {
  if (!primary.running) {
    throw new ClusterError(
      'WAL_ERR_CLUSTER_STANDBY',
      `${primary.description} is not running; start it first.`,
    );
  }
  const slot = options.slot ?? `standby_${randomBytes(4).toString('hex')}`;
  if (!/^[a-z0-9_]{1,63}$/.test(slot)) {
    throw new ClusterError(
      'WAL_ERR_CLUSTER_OPTIONS',
      `Slot name "${slot}" is invalid; use 1-63 lower-case letters, digits and underscores.`,
    );
  }
  return slot;
}

/**
 * A non-exclusive low-level backup of `primary` into the standby's data directory: the files, the
 * backup label and tablespace map the stop function returns, the WAL written meanwhile, and
 * `standby.signal`.
 */
async function takeBaseBackup(
  session: pg.Client,
  primary: Cluster,
  standby: Cluster,
  options: StandbyOptions,
): Promise<void> {
  const legacy = primary.version < 15;
  await session.query(
    legacy
      ? "SELECT pg_start_backup('wal standby', true, false)"
      : "SELECT pg_backup_start('wal standby', true)",
  );
  await copyDataDirectory(primary.dataDir, standby.dataDir);
  const stopped = await session.query<{ labelfile: string; spcmapfile: string | null }>(
    legacy
      ? 'SELECT labelfile, spcmapfile FROM pg_stop_backup(false, false)'
      : 'SELECT labelfile, spcmapfile FROM pg_backup_stop(false)',
  );
  const label = stopped.rows[0];
  if (label === undefined) throw new Error('the backup stop function returned no row');
  await writeFile(join(standby.dataDir, 'backup_label'), label.labelfile);
  if (label.spcmapfile) await writeFile(join(standby.dataDir, 'tablespace_map'), label.spcmapfile);
  if (options.copyWal !== false) await copyWal(primary.pgWalDir, standby.pgWalDir);
  await writeFile(join(standby.dataDir, `${options.signal ?? 'standby'}.signal`), '');
}

/** The standby's settings appended to its `postgresql.conf`, and its files given to the server user. */
async function configureStandby(
  primary: Cluster,
  standby: Cluster,
  slot: string | undefined,
  extraSettings: Record<string, string>,
): Promise<void> {
  const primaryConnection = `host=${primary.socketDir} port=${primary.port} user=${ADMIN_ROLE} application_name=standby`;
  const settings: Record<string, string> = {
    unix_socket_directories: standby.socketDir,
    // The primary's certificate files live in its directory, which may go first.
    ssl: 'off',
    hot_standby: 'on',
    ...(slot === undefined ? {} : { primary_conninfo: primaryConnection, primary_slot_name: slot }),
    ...extraSettings,
  };
  await appendFile(
    join(standby.dataDir, 'postgresql.conf'),
    `\n# Written by @wal/pg-cluster for a standby of ${quoteLiteral(primary.dataDir)}\n${renderSettings(settings)}\n`,
  );
  const user = serverUser();
  if (user.uid !== undefined && user.gid !== undefined) await chownTree(standby.dataDir, user.uid, user.gid);
}
