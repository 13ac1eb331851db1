import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type Cluster, startCluster, startStandby } from '@wal/pg-cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, RunningProcess, type RunResult } from './e2e/harness.js';

/**
 * PostgreSQL's TAP test src/bin/pg_basebackup/t/020_pg_receivewal.pl (spec §8), run against the
 * built `wal` binary (bin/run.js over dist/: `pnpm test` builds first) and a throwaway PostgreSQL
 * with 1 MB segments. Assertions are the TAP test's: exit codes, stderr patterns, file names.
 */

const MEGABYTE = 1024 * 1024;

let cluster: Cluster;
let base: string;

/** The environment of every run: PGHOST/PGPORT/PGUSER point at the cluster, nothing else of ours leaks in. */
function environment(target: Cluster): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  return { ...env, PGHOST: target.host, PGPORT: String(target.port), PGUSER: target.superuser };
}

function start(args: string[], target: Cluster = cluster): RunningProcess {
  return new RunningProcess(
    process.execPath,
    [CLI_BIN, 'receive', ...args],
    environment(target),
    `wal receive ${args.join(' ')}`,
  );
}

function wal(args: string[], target: Cluster = cluster): Promise<RunResult> {
  return start(args, target).result;
}

async function expectSuccess(args: string[], target: Cluster = cluster): Promise<RunResult> {
  const result = await wal(args, target);
  expect(result.code, `wal receive ${args.join(' ')}\n${result.stderr}`).toBe(0);
  return result;
}

async function scalar(sql: string, target: Cluster = cluster): Promise<string> {
  const [row] = await target.sql(sql);
  return String(Object.values(row ?? {})[0]);
}

function matching(directory: string, pattern: RegExp): string[] {
  return readdirSync(directory)
    .filter((name) => pattern.test(name))
    .sort();
}

/** Resolves once `condition` holds; the suite's timeout bounds the wait. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 50));
}

beforeAll(async () => {
  cluster = await startCluster({ segmentSizeMb: 1 });
  base = mkdtempSync(join(tmpdir(), 'wal-receive-tap-'));
});

afterAll(async () => {
  await cluster?.stop();
  if (base !== undefined) rmSync(base, { recursive: true, force: true });
});

describe('wal receive against PostgreSQL (TAP 020_pg_receivewal.pl)', () => {
  it('1-3, 10: help, version, a bad option, a refused -Z, a missing directory through the real binary', async () => {
    const help = await wal(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).not.toBe('');
    expect(help.stderr).toBe('');
    for (const line of help.stdout.split('\n')) expect(line.length).toBeLessThanOrEqual(95);

    const version = await wal(['--version']);
    expect(version).toMatchObject({ code: 0, stderr: '' });
    expect(version.stdout).toMatch(/^wal receive \(wal\) \S+\n$/);

    const bad = await wal(['--not-a-valid-option']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).not.toBe('');

    // Cases 4-10 are checked in receive.test.ts without a process; one refusal here shows
    // the binary reports them the same way.
    const archive = join(base, 'archive_wal_checks');
    expect((await wal(['--directory', base, '--compress', 'none:1'])).stderr).toBe(
      'wal receive: error: invalid compression specification: compression algorithm "none" does not accept a compression level\n',
    );
    // The directory must exist and is never created.
    const missing = await wal(['--directory', archive]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(
      `wal receive: error: could not open directory "${archive}": No such file or directory\n`,
    );
    expect(existsSync(archive)).toBe(false);
  });

  it('11-12: --create-slot makes a physical slot without reserved WAL; --drop-slot removes it', async () => {
    await expectSuccess(['--slot', 'test', '--create-slot']);
    const [slot] = await cluster.sql(
      "SELECT slot_type, restart_lsn FROM pg_replication_slots WHERE slot_name = 'test'",
    );
    expect(slot).toEqual({ slot_type: 'physical', restart_lsn: null });

    const again = await wal(['--slot', 'test', '--create-slot']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/replication slot "test" already exists/);
    await expectSuccess(['--slot', 'test', '--create-slot', '--if-not-exists']);

    await expectSuccess(['--slot', 'test', '--drop-slot']);
    expect(await scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'test'")).toBe('0');
    const gone = await wal(['--slot', 'test', '--drop-slot']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/replication slot "test" does not exist/);
  });

  it('connects with -h/-p/-U overriding -d, and exits 1 at once when the first connection fails', async () => {
    // Observed with PostgreSQL 15: -p wins over a port inside -d (spec §1.4, §10 item 2).
    await expectSuccess([
      '--slot',
      'precedence',
      '--create-slot',
      '-d',
      'host=127.0.0.1 port=1',
      '-p',
      String(cluster.port),
    ]);
    await expectSuccess(['--slot', 'precedence', '--drop-slot']);

    const refused = await wal(['--directory', base, '-h', '127.0.0.1', '-p', '1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^wal receive: error: .*port 1 failed/);

    const badConnectionString = await wal(['--directory', base, '-d', 'host']);
    expect(badConnectionString.code).toBe(1);
    expect(badConnectionString.stderr).toMatch(/^wal receive: error: /);
  });

  it('13-21: first stream, gzip, lz4, then uncompressed again; modes 0700/0600', async () => {
    const archive = join(base, 'archive_wal');
    mkdirSync(archive, { mode: 0o700 });
    /** Switches to a new segment and writes a row there: the returned LSN lies inside that segment. */
    const switchAndInsert = async (value: number): Promise<string> => {
      await cluster.sql('SELECT pg_switch_wal()');
      const lsn = await scalar('SELECT pg_current_wal_insert_lsn()');
      await cluster.sql(`INSERT INTO test_table VALUES (${value})`);
      return lsn;
    };
    /**
     * Streams into one more segment with `--compress method`; the files ending in `extension` must
     * then be one completed segment and one `.partial`, both returned.
     */
    const streamCompressed = async (value: number, method: string, extension: string) => {
      const endpos = await switchAndInsert(value);
      await expectSuccess([
        ...['--directory', archive, '--verbose', '--endpos', endpos, '--compress', method, '--no-loop'],
      ]);
      const completed = matching(archive, new RegExp(`\\${extension}$`));
      const partials = matching(archive, new RegExp(`\\${extension}\\.partial$`));
      expect(completed).toHaveLength(1);
      expect(partials).toHaveLength(1);
      return { completed, partials };
    };

    // 13-14: one .partial after a run that ends inside the segment after a switch.
    await cluster.sql('CREATE TABLE test_table (x integer PRIMARY KEY)');
    const nextLsn = await switchAndInsert(1);
    const first = await expectSuccess([
      ...['--directory', archive, '--verbose', '--endpos', nextLsn, '--synchronous', '--no-loop'],
    ]);
    expect(first.stderr).toMatch(/wal receive: starting log streaming at \S+ \(timeline 1\)/);
    expect(first.stderr).toMatch(/wal receive: stopped log streaming at \S+ \(timeline 1\)/);
    const partials = matching(archive, /\.partial$/);
    expect(partials).toHaveLength(1);
    const firstPartial = partials[0]!;

    // 15-16: gzip completes the uncompressed partial's segment as .gz and leaves a .gz.partial.
    const { completed: gzipped, partials: gzipPartials } = await streamCompressed(2, 'gzip:1', '.gz');
    expect(gzipped[0]).toBe(firstPartial.replace(/\.partial$/, '.gz'));
    expect(gunzipSync(readFileSync(join(archive, gzipped[0]!))).length).toBe(MEGABYTE);

    // 17: lz4 completes the .gz.partial's segment as .lz4 and leaves a .lz4.partial.
    const { completed: lz4Files, partials: lz4Partials } = await streamCompressed(3, 'lz4', '.lz4');
    expect(lz4Files[0]).toBe(gzipPartials[0]!.replace(/(\.gz)?\.partial$/, '.lz4'));
    // An LZ4 frame starts with its magic number 0x184D2204 (little-endian).
    expect(readFileSync(join(archive, lz4Files[0]!)).subarray(0, 4)).toEqual(
      Buffer.from([0x04, 0x22, 0x4d, 0x18]),
    );

    // 18-20: without compression the last partial's segment is completed uncompressed.
    const lastLsn = await switchAndInsert(4);
    await expectSuccess(['--directory', archive, '--verbose', '--endpos', lastLsn, '--no-loop']);
    const completed = lz4Partials[0]!.replace(/(\.gz|\.lz4)?\.partial$/, '');
    expect(statSync(join(archive, completed)).size).toBe(MEGABYTE);

    // 21: directories 0700, files 0600 with the server's default data_directory_mode.
    expect(statSync(archive).mode & 0o777).toBe(0o700);
    for (const name of readdirSync(archive)) {
      expect(statSync(join(archive, name)).mode & 0o777, name).toBe(0o600);
    }
  });

  it('22-24: a slot is the start point; a missing slot fails with its name', async () => {
    const slotArchive = join(base, 'slot_wal');
    mkdirSync(slotArchive, { mode: 0o700 });
    await cluster.sql('CHECKPOINT');
    await cluster.sql("SELECT pg_create_physical_replication_slot('archive_slot', true)");
    const streamedFile = await scalar(
      "SELECT pg_walfile_name(restart_lsn) FROM pg_replication_slots WHERE slot_name = 'archive_slot'",
    );
    await cluster.sql('INSERT INTO test_table VALUES (5)');
    await cluster.sql('SELECT pg_switch_wal()');
    const nextLsn = await scalar('SELECT pg_current_wal_insert_lsn()');
    await cluster.sql('INSERT INTO test_table VALUES (6)');

    const common = ['--directory', slotArchive, '--no-loop', '--no-sync', '--verbose', '--endpos', nextLsn];
    const missing = await wal([...common, '--slot', 'nonexistentslot']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/wal receive: error: replication slot "nonexistentslot" does not exist/);
    expect(missing.stderr).toMatch(/wal receive: error: disconnected\n$/);

    await expectSuccess([...common, '--slot', 'archive_slot']);
    expect(statSync(join(slotArchive, streamedFile)).size).toBe(MEGABYTE);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s stops streaming with exit 0 and keeps the .partial (spec §8.3)',
    async (signal) => {
      const directory = join(base, `signal_${signal}`);
      mkdirSync(directory, { mode: 0o700 });
      const receiver = start(['--directory', directory, '--verbose', '--no-sync']);
      await until(
        () =>
          receiver.stderr.includes('starting log streaming') &&
          matching(directory, /\.partial$/).length === 1,
      );
      receiver.signal(signal);
      const outcome = await receiver.result;
      expect(outcome.code, outcome.stderr).toBe(0);
      expect(outcome.stderr).toMatch(/wal receive: received interrupt signal, exiting/);
      expect(matching(directory, /\.partial$/)).toHaveLength(1);
    },
  );

  it('25-26: follows a timeline switch through a slot on a promoted standby', async () => {
    const standby = await startStandby(cluster);
    try {
      await standby.sql("SELECT pg_create_physical_replication_slot('archive_slot', true)");
      await cluster.waitFor(
        `SELECT pg_current_wal_flush_lsn() <= replay_lsn FROM pg_stat_replication LIMIT 1`,
      );
      const restartLsn = await scalar(
        "SELECT restart_lsn FROM pg_replication_slots WHERE slot_name = 'archive_slot'",
        standby,
      );
      const beforePromotion = await scalar(`SELECT pg_walfile_name('${restartLsn}')`);
      await standby.promote();
      const afterPromotion = await scalar('SELECT pg_walfile_name(pg_current_wal_insert_lsn())', standby);
      await standby.sql('INSERT INTO test_table VALUES (7)');
      await standby.sql('SELECT pg_switch_wal()');
      const nextLsn = await scalar('SELECT pg_current_wal_insert_lsn()', standby);
      await standby.sql('INSERT INTO test_table VALUES (8)');

      const timelineArchive = join(base, 'timeline_wal');
      mkdirSync(timelineArchive, { mode: 0o700 });
      const run = await expectSuccess(
        [
          '--directory',
          timelineArchive,
          '--verbose',
          '--endpos',
          nextLsn,
          '--slot',
          'archive_slot',
          '--no-sync',
          '--no-loop',
        ],
        standby,
      );
      expect(run.stderr).toMatch(/switched to timeline 2 at /);
      expect(statSync(join(timelineArchive, beforePromotion)).size).toBe(MEGABYTE);
      expect(statSync(join(timelineArchive, afterPromotion)).size).toBe(MEGABYTE);
      expect(existsSync(join(timelineArchive, '00000002.history'))).toBe(true);
    } finally {
      await standby.stop();
    }
  });
});

describe('wal receive with password authentication', () => {
  let secured: Cluster;

  beforeAll(async () => {
    secured = await startCluster({
      users: [{ name: 'replicator', password: 'correct horse', replication: true }],
      hba: ['local all all trust', 'host replication replicator 127.0.0.1/32 scram-sha-256'],
    });
  });

  afterAll(async () => {
    await secured?.stop();
  });

  function withPassword(args: string[], input: string | undefined): Promise<RunResult> {
    return new RunningProcess(
      process.execPath,
      [CLI_BIN, 'receive', ...args],
      { ...environment(secured), PGUSER: 'replicator' },
      `wal receive ${args.join(' ')}`,
      input ?? '',
    ).result;
  }

  it('-W asks for the password (read from stdin when it is not a terminal)', async () => {
    const created = await withPassword(['--slot', 'secured', '--create-slot', '-W'], 'correct horse\n');
    expect(created.code, created.stderr).toBe(0);
    expect(created.stderr).toBe('Password: \n');
    expect(
      await scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'secured'", secured),
    ).toBe('1');
  });

  it('-w never asks and fails; a wrong password fails with the server message', async () => {
    const never = await withPassword(['--slot', 'secured', '--drop-slot', '-w'], undefined);
    expect(never.code).toBe(1);
    expect(never.stderr).not.toContain('Password: ');
    expect(never.stderr).toMatch(/^wal receive: error: /);

    const wrong = await withPassword(['--slot', 'secured', '--drop-slot', '-W'], 'wrong\n');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/password authentication failed for user "replicator"/);
  });
});
