import { existsSync, readFileSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ClusterError, startCluster, startStandby, testedVersions } from './index.js';

async function query(config: pg.ClientConfig, text: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query(text)).rows;
  } finally {
    await client.end();
  }
}

describe.each(testedVersions())('PostgreSQL %i', (version) => {
  it('starts, answers SQL over TCP and the socket, serves replication settings, and leaves nothing behind', async () => {
    const cluster = await startCluster({ version, segmentSizeMb: 1 });
    try {
      const rows = await cluster.sql<{ version: string }>('SELECT version()');
      expect(rows[0]?.version).toMatch(new RegExp(`^PostgreSQL ${version}\\.`));

      const settings = await cluster.sql<{ name: string; setting: string }>(
        "SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'wal_segment_size', 'port') ORDER BY name",
      );
      expect(settings).toEqual([
        { name: 'port', setting: String(cluster.port) },
        { name: 'wal_level', setting: 'replica' },
        { name: 'wal_segment_size', setting: '1048576' },
      ]);

      // An independent connection over TCP as the superuser, trusted by the default pg_hba.
      const overTcp = await query(
        { host: cluster.host, port: cluster.port, user: cluster.superuser, database: 'postgres' },
        'SELECT current_user AS user, inet_server_port() AS port',
      );
      expect(overTcp).toEqual([{ user: 'postgres', port: cluster.port }]);
      // Where the machine has IPv6 loopback, "localhost" may resolve to ::1 first: serve it too.
      const [listen] = await cluster.sql<{ listen_addresses: string }>('SHOW listen_addresses');
      expect(['127.0.0.1', '127.0.0.1,::1']).toContain(listen?.listen_addresses);
      if (listen?.listen_addresses.includes('::1')) {
        await expect(
          query(
            { host: '::1', port: cluster.port, user: cluster.superuser, database: 'postgres' },
            'SELECT 1 AS one',
          ),
        ).resolves.toEqual([{ one: 1 }]);
      }

      // Multi-statement SQL returns the rows of the last statement; WAL files are where we say.
      const switched = await cluster.sql<{ file: string }>(
        'CREATE TABLE t (x int); INSERT INTO t VALUES (1); SELECT pg_walfile_name(pg_switch_wal()) AS file',
      );
      const walFiles = await readdir(cluster.pgWalDir);
      expect(walFiles).toContain(switched[0]?.file);
      expect(statSync(`${cluster.pgWalDir}/${switched[0]?.file}`).size).toBe(cluster.segmentSize);
    } finally {
      await cluster.stop();
    }
    expect(existsSync(cluster.baseDir)).toBe(false);
    expect(cluster.running).toBe(false);
    await expect(cluster.sql('SELECT 1')).rejects.toMatchObject({ code: 'WAL_ERR_CLUSTER_STOPPED' });
  });
});

describe('TLS, users and restart', () => {
  const version = testedVersions().at(-1) ?? 18;

  it('accepts TLS connections verified against its CA and enforces its pg_hba lines', async () => {
    const cluster = await startCluster({
      version,
      tls: true,
      hba: [
        'hostssl all scram_user 127.0.0.1/32 scram-sha-256',
        'hostssl all md5_user 127.0.0.1/32 md5',
        'hostssl all cert_user 127.0.0.1/32 cert',
        'host all all 127.0.0.1/32 reject',
      ],
      users: [
        { name: 'scram_user', password: "it's secret", replication: true },
        { name: 'md5_user', password: 'md5 secret', passwordEncryption: 'md5' },
        { name: 'cert_user' },
      ],
    });
    try {
      const certificates = cluster.certificates;
      if (certificates === undefined) throw new Error('expected certificates');
      const ca = readFileSync(certificates.caCertPath, 'utf8');
      const tcp = { host: cluster.host, port: cluster.port, database: 'postgres' };

      const [row] = await query(
        { ...tcp, user: 'scram_user', password: "it's secret", ssl: { ca, servername: 'localhost' } },
        'SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      expect(row?.ssl).toBe(true);
      expect(String(row?.version)).toMatch(/^TLSv1\.[23]$/);

      await expect(
        query({ ...tcp, user: 'scram_user', password: 'wrong', ssl: { ca } }, 'SELECT 1'),
      ).rejects.toMatchObject({ code: '28P01' });
      await expect(
        query({ ...tcp, user: 'scram_user', password: "it's secret" }, 'SELECT 1'),
      ).rejects.toThrow(/pg_hba\.conf rejects connection/);

      const stored = await cluster.sql<{ rolname: string; method: string; rolreplication: boolean }>(
        "SELECT rolname, split_part(rolpassword, '$', 1) AS method, rolreplication FROM pg_authid WHERE rolname IN ('scram_user', 'md5_user') ORDER BY rolname",
      );
      expect(stored).toEqual([
        { rolname: 'md5_user', method: expect.stringMatching(/^md5[0-9a-f]{32}$/), rolreplication: false },
        { rolname: 'scram_user', method: 'SCRAM-SHA-256', rolreplication: true },
      ]);
      await expect(
        query({ ...tcp, user: 'md5_user', password: 'md5 secret', ssl: { ca } }, 'SELECT 1 AS one'),
      ).resolves.toEqual([{ one: 1 }]);

      const client = await cluster.createClientCertificate('cert_user');
      await expect(
        query(
          {
            ...tcp,
            user: 'cert_user',
            ssl: {
              ca,
              cert: readFileSync(client.certPath, 'utf8'),
              key: readFileSync(client.keyPath, 'utf8'),
            },
          },
          'SELECT current_user AS user',
        ),
      ).resolves.toEqual([{ user: 'cert_user' }]);
      expect(statSync(client.keyPath).mode & 0o777).toBe(0o600);

      await cluster.sql('CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)');
      await cluster.restart();
      await expect(cluster.sql('SELECT x FROM kept')).resolves.toEqual([{ x: 42 }]);
      // A crash-like stop keeps the files; the server recovers on start.
      await cluster.sql('INSERT INTO kept VALUES (43)');
      await cluster.shutdown('immediate');
      expect(cluster.running).toBe(false);
      await cluster.start();
      await expect(cluster.sql('SELECT x FROM kept ORDER BY x')).resolves.toEqual([{ x: 42 }, { x: 43 }]);

      const failure = await cluster.sql('SELECT * FROM missing_table').catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(ClusterError);
      expect(failure).toMatchObject({ code: 'WAL_ERR_CLUSTER_SQL', sqlState: '42P01' });
    } finally {
      await cluster.stop();
    }
    expect(existsSync(cluster.baseDir)).toBe(false);
  });

  it('removes its directory and reports the log when the server cannot start', async () => {
    // ssl=on without certificates passes single-user setup but stops the postmaster at startup.
    const failure = await startCluster({ version, settings: { ssl: 'on' } }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ClusterError);
    expect(failure).toMatchObject({ code: 'WAL_ERR_CLUSTER_START' });
    expect((failure as Error).message).toMatch(/server\.crt/);
    const directory = /in (\/\S+)\/data/.exec((failure as Error).message)?.[1];
    expect(directory).toBeDefined();
    expect(existsSync(directory ?? '/')).toBe(false);
  });
});

describe('standby', () => {
  const version = testedVersions().at(-1) ?? 18;

  it('streams from its primary, and after promotion writes on timeline 2', async () => {
    const primary = await startCluster({ version, segmentSizeMb: 1 });
    let standby: Awaited<ReturnType<typeof startStandby>> | undefined;
    try {
      await primary.sql('CREATE TABLE replicated (x int); INSERT INTO replicated VALUES (1)');
      await expect(startStandby(primary, { slot: 'Bad-Name' })).rejects.toMatchObject({
        code: 'WAL_ERR_CLUSTER_OPTIONS',
        message: expect.stringContaining('Slot name "Bad-Name" is invalid'),
      });
      standby = await startStandby(primary, { slot: 'standby_one' });
      await expect(standby.sql('SELECT pg_is_in_recovery() AS recovering')).resolves.toEqual([
        { recovering: true },
      ]);

      await primary.sql('INSERT INTO replicated VALUES (2)');
      const [position] = await primary.sql<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
      await standby.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${position?.lsn}'::pg_lsn`);
      await expect(standby.sql('SELECT x FROM replicated ORDER BY x')).resolves.toEqual([{ x: 1 }, { x: 2 }]);
      await expect(
        primary.sql("SELECT active FROM pg_replication_slots WHERE slot_name = 'standby_one'"),
      ).resolves.toEqual([{ active: true }]);

      await primary.stop();
      await standby.promote();
      await standby.sql('INSERT INTO replicated VALUES (3)');
      const [file] = await standby.sql<{ name: string }>(
        'SELECT pg_walfile_name(pg_current_wal_lsn()) AS name',
      );
      expect(file?.name).toMatch(/^00000002/);
    } finally {
      await standby?.stop();
      await primary.stop();
    }
    expect(existsSync(standby?.baseDir ?? '/nonexistent')).toBe(false);
  });
});
