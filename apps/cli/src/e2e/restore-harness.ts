import { chmodSync, chownSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Cluster, serverUser, startStandby } from '@wal/pg-cluster';
import { CLI_BIN, KEEP_WAL_SETTINGS, type RunningProcess, scalar, startReceive } from './harness.js';

// What the restore end-to-end tests share: archives that `wal receive` writes from a real server,
// base backups without WAL that recover through restore_command, and the rows they must hold.

/**
 * restore_command running this checkout's bin/run.js with this test's node; `spool` adds
 * `--prefetch=4`; `env` is set for the command through the shell PostgreSQL runs it with.
 */
export function restoreCommand(
  archive: string,
  options: { spool?: string | undefined; env?: Record<string, string> } = {},
): string {
  const prefetch = options.spool === undefined ? '' : ` --prefetch=4 --spool='${options.spool}'`;
  const env = Object.entries(options.env ?? {})
    .map(([name, value]) => `${name}='${value}' `)
    .join('');
  return `${env}'${process.execPath}' '${CLI_BIN}' restore --retry-delay=100${prefetch} -D '${archive}' %f %p`;
}

/** A directory the server user may write (for the spool). */
export function serverUserDirectory(path: string): string {
  const user = serverUser();
  if (user.uid !== undefined && user.gid !== undefined) chownSync(path, user.uid, user.gid);
  return path;
}

/** The server user must read what root's `wal receive` wrote (files are created 0600). */
export function readableForServer(directory: string): void {
  chmodSync(directory, 0o755);
  for (const name of readdirSync(directory)) {
    const path = join(directory, name);
    chmodSync(path, statSync(path).isDirectory() ? 0o755 : 0o644);
  }
  chmodSync(join(directory, '..'), 0o755);
}

/** A base backup without WAL, not started: recovery.signal (or standby.signal) and restore_command. */
export async function backupFor(primary: Cluster, command: string, standby = false): Promise<Cluster> {
  return startStandby(primary, {
    copyWal: false,
    signal: standby ? 'standby' : 'recovery',
    stream: standby,
    start: false,
    settings: {
      ...KEEP_WAL_SETTINGS,
      restore_command: command,
      recovery_target_timeline: 'latest',
    },
  });
}

export async function archiveFrom(
  server: Cluster,
  directory: string,
  args: readonly string[],
): Promise<RunningProcess> {
  const receiver = startReceive(server, ['-D', directory, '-v', '-n', '--synchronous', ...args]);
  await receiver.waitForStderr(/starting log streaming at/);
  return receiver;
}

/** Commits `count` rows from `first` on, in transactions of 100, switching WAL every `switchEvery`. */
export async function commitRows(
  server: Cluster,
  first: number,
  count: number,
  switchEvery: number,
): Promise<void> {
  for (let start = first; start < first + count; start += 100) {
    await server.sql(
      `INSERT INTO committed SELECT g, repeat('x', 200) FROM generate_series(${start}, ${start + 99}) g`,
    );
    if ((start - first + 100) % switchEvery === 0) await server.sql('SELECT pg_switch_wal()');
  }
}

export async function rowCount(server: Cluster): Promise<number> {
  return Number(await scalar(server, 'SELECT count(*) FROM committed'));
}

/** Starts a recovery server and waits until recovery has ended (it promoted). */
export async function recover(server: Cluster): Promise<string> {
  await server.start();
  await server.waitFor('SELECT NOT pg_is_in_recovery()', 60_000);
  return readFileSync(server.logPath, 'utf8');
}
