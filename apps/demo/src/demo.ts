import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentCompressionRuntime, Logger, type ReceiveOptions, runReceive } from '@wal/cli';
import { connect } from '@wal/libpq-lite';
import { type Cluster, type PostgresVersion, startCluster } from '@wal/pg-cluster';
import { formatLsn, parseLsn } from '@wal/protocol';

const SLOT = 'wal_demo';

/**
 * The demo: everything `wal receive` does, against a PostgreSQL it starts itself from the
 * embedded binaries (free port, temporary directory) and removes afterwards. It shows
 * IDENTIFY_SYSTEM over a replication connection, then streams a few segments of freshly made WAL
 * through a slot into a temporary directory up to an end position, and lists the files.
 * It lives in the workspace, not in the published CLI, so that installing `wal` does not install
 * PostgreSQL (docs/adr/0007-node-lines-and-packaging.md).
 */
export async function runDemo(version: PostgresVersion): Promise<void> {
  say(`Starting a throwaway PostgreSQL ${version} (1 MB WAL segments)...`);
  const cluster = await startCluster({ version, segmentSizeMb: 1 });
  const archive = await mkdtemp(join(tmpdir(), 'wal-demo-archive-'));
  try {
    say(`  listening on ${cluster.host}:${cluster.port}, data in ${cluster.dataDir}`);
    await identifyAndCreateSlot(cluster);
    const endLsn = await writeSomeWal(cluster);
    await receiveAndList(cluster, archive, endLsn);
  } finally {
    say();
    say('Stopping the server and removing its files...');
    await cluster.stop();
    await rm(archive, { recursive: true, force: true });
    say('Done.');
  }
}

function say(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Only what the demo sets: a developer's PGHOST or PGPASSWORD must not redirect it. */
function demoEnvironment(): Record<string, string | undefined> {
  return { HOME: process.env.HOME };
}

/** IDENTIFY_SYSTEM over a replication connection, then a slot that keeps the WAL written next. */
async function identifyAndCreateSlot(cluster: Cluster): Promise<void> {
  const parameters = {
    host: cluster.host,
    port: String(cluster.port),
    user: cluster.superuser,
    dbname: 'replication',
    replication: 'true',
    application_name: 'wal demo',
  };
  say();
  say('IDENTIFY_SYSTEM over a replication connection:');
  const connection = await connect(parameters, { env: demoEnvironment() });
  try {
    const system = await connection.identifySystem();
    say(`  server version     ${connection.serverVersionText}`);
    say(`  system identifier  ${system.systemId}`);
    say(`  timeline           ${system.timeline}`);
    say(`  flushed up to      ${formatLsn(system.xlogPosition)}`);
    say(`  database           ${system.databaseName ?? '(none: physical replication)'}`);
    say(`  WAL segment size   ${await connection.show('wal_segment_size')}`);
    // A slot that reserves WAL now, so the WAL written next stays until we have streamed it.
    const slot = await connection.createReplicationSlot(SLOT, { reserveWal: true });
    say(`  created slot "${slot.slotName}": the server keeps WAL from here until it is streamed`);
  } finally {
    await connection.close();
  }
}

/** A table, rows, a segment switch; returns an end position with more WAL past it to stop at. */
async function writeSomeWal(cluster: Cluster): Promise<bigint> {
  say();
  say('Writing some WAL (a table, 20000 rows, a segment switch)...');
  await cluster.sql(
    'CREATE TABLE demo_events (id int PRIMARY KEY, payload text);' +
      "INSERT INTO demo_events SELECT g, repeat('x', 100) FROM generate_series(1, 20000) AS g;",
  );
  await cluster.sql('SELECT pg_switch_wal()');
  const endLsn = await currentInsertLsn(cluster);
  // WAL past the end position, so the stream has something beyond it to stop at.
  await cluster.sql("INSERT INTO demo_events VALUES (0, 'after the end position')");
  say(`  end position ${formatLsn(endLsn)}`);
  return endLsn;
}

/** `wal receive` up to the end position through the slot, the files it wrote, then the slot dropped. */
async function receiveAndList(cluster: Cluster, archive: string, endLsn: bigint): Promise<void> {
  const environment = {
    logger: new Logger({ program: '  wal receive', output: process.stdout }),
    env: demoEnvironment(),
  };
  const options = receiveOptions(cluster, archive, endLsn);
  say();
  say(`wal receive -D ${archive} --slot=${SLOT} --endpos=${formatLsn(endLsn)} --no-loop --verbose`);
  const streamed = await runReceive({ ...options, action: 'stream' }, environment);
  if (streamed !== 0) say('  (streaming did not complete; the files below are what arrived)');

  say();
  say(`Files in ${archive}:`);
  for (const name of (await readdir(archive)).sort()) {
    const size = (await stat(join(archive, name))).size;
    say(`  ${name.padEnd(36)} ${String(size).padStart(9)} bytes`);
  }

  say();
  say(`wal receive --slot=${SLOT} --drop-slot --verbose`);
  await runReceive({ ...options, action: 'drop-slot' }, environment);
  if (!currentCompressionRuntime().zstd) {
    say();
    say('(This Node.js has no zstd; -Z gzip and -Z lz4 are available.)');
  }
}

/** The options of the command lines the demo prints, as `wal receive` would parse them. */
function receiveOptions(cluster: Cluster, archive: string, endLsn: bigint): Omit<ReceiveOptions, 'action'> {
  return {
    directory: archive,
    endLsn,
    ifNotExists: false,
    noLoop: true,
    sync: true,
    statusIntervalMs: 10_000,
    slot: SLOT,
    synchronous: false,
    verbose: 1,
    compression: { method: 'none' },
    connectionString: undefined,
    host: cluster.host,
    port: String(cluster.port),
    username: cluster.superuser,
    password: 'never',
    json: false,
    progress: false,
    trace: undefined,
    receiveTimeoutMs: undefined,
    verify: false,
    metricsAddress: undefined,

    spool: undefined,
    partialUploadIntervalMs: 60_000,
    uploadConcurrency: 4,
    ack: 'local',
  };
}

async function currentInsertLsn(cluster: Cluster): Promise<bigint> {
  const rows = await cluster.sql('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  return parseLsn(String(rows[0]?.lsn));
}
