import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Cluster, createCertificateAuthority, startCluster, testedVersions } from '@wal/pg-cluster';
import { decodeReplicationMessage, parseLsn } from '@wal/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationError, type Connection, connect, type ReplicationStream, TlsError } from './index.js';

// Full matrix on the newest tested version, a smoke test on the others: keeps the suite near a minute.
const versions = testedVersions();
const mainVersion = Math.max(...versions);
const otherVersions = versions.filter((version) => version !== mainVersion);

const PASSWORD = 'Pa:ss w\\ord';
const users = [
  { name: 'rep_scram', password: PASSWORD, replication: true },
  { name: 'rep_md5', password: PASSWORD, replication: true, passwordEncryption: 'md5' as const },
  { name: 'rep_password', password: PASSWORD, replication: true },
  { name: 'rep_plus', password: PASSWORD, replication: true },
  { name: 'rep_trust', replication: true },
  { name: 'rep_nossl', replication: true },
  { name: 'no_replication' },
  { name: 'rep_cert', replication: true },
];
const hba = [
  'local replication all trust',
  'hostssl replication rep_plus 127.0.0.1/32 scram-sha-256',
  'hostssl replication rep_cert 127.0.0.1/32 cert',
  'hostnossl replication rep_nossl 127.0.0.1/32 trust',
  'host replication rep_scram 127.0.0.1/32 scram-sha-256',
  'host replication rep_md5 127.0.0.1/32 md5',
  'host replication rep_password 127.0.0.1/32 password',
  'host replication rep_trust 127.0.0.1/32 trust',
  'host replication no_replication 127.0.0.1/32 trust',
];

let home: string;
const env = () => ({ HOME: home });

async function expectFailure<T extends Error>(
  promise: Promise<Connection>,
  type: new (...args: never[]) => T,
): Promise<T> {
  try {
    (await promise).destroy();
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return error as T;
  }
  throw new Error('expected the connection to fail');
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'libpq-lite-home-'));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

async function firstWalData(stream: ReplicationStream) {
  for (;;) {
    const event = stream.readMessage();
    if (event === undefined) {
      await stream.waitForMessage(30_000);
      continue;
    }
    if (event.type !== 'copy-data') throw new Error(`unexpected ${event.type}`);
    const message = decodeReplicationMessage(event.data);
    if (message.type === 'XLogData') return message;
  }
}

async function stopStream(stream: ReplicationStream) {
  stream.sendCopyDone();
  for (;;) {
    const event = stream.readMessage();
    if (event === undefined) {
      await stream.waitForMessage(30_000);
      continue;
    }
    if (event.type === 'end') return event.result;
  }
}

describe(`libpq-lite against PostgreSQL ${mainVersion} (full)`, () => {
  let cluster: Cluster;
  const tcp = (user: string, extra: Record<string, string> = {}) => ({
    host: '127.0.0.1',
    port: String(cluster.port),
    user,
    dbname: 'replication',
    replication: 'true',
    sslmode: 'disable',
    ...extra,
  });

  beforeAll(async () => {
    cluster = await startCluster({ version: mainVersion, tls: true, hba, users, segmentSizeMb: 1 });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  describe('authentication', () => {
    it.each([
      ['rep_scram', 'scram-sha-256'],
      ['rep_md5', 'md5'],
      ['rep_password', 'password'],
    ])('%s (%s) succeeds with the right password and fails clearly with a wrong one', async (user) => {
      const connection = await connect(tcp(user, { password: PASSWORD }), { env: env() });
      expect(connection.parameters.get('session_authorization')).toBe(user);
      await connection.close();
      const error = await expectFailure(
        connect(tcp(user, { password: 'wrong' }), { env: env() }),
        AuthenticationError,
      );
      expect(error.code).toBe('WAL_ERR_AUTH_FAILED');
      expect(error.sqlState).toBe('28P01');
      expect(error.message).toContain(`password authentication failed for user "${user}"`);
      const missing = await expectFailure(connect(tcp(user), { env: env() }), AuthenticationError);
      expect(missing.code).toBe('WAL_ERR_AUTH_NO_PASSWORD');
      expect(missing.needsPassword).toBe(true);
    });

    it('trust needs no password', async () => {
      const connection = await connect(tcp('rep_trust'), { env: env() });
      expect(connection.serverVersion).toBeGreaterThanOrEqual(mainVersion * 10000);
      await connection.close();
    });

    it('SCRAM-SHA-256-PLUS with channel_binding=require over TLS', async () => {
      const trace: string[] = [];
      const connection = await connect(
        tcp('rep_plus', { password: PASSWORD, sslmode: 'require', channel_binding: 'require' }),
        { env: env(), trace: (line) => trace.push(line) },
      );
      expect(connection.usesTls).toBe(true);
      await connection.close();
      expect(
        trace.some((line) => line.includes('"SCRAM-SHA-256-PLUS"\t"p=tls-server-end-point,,n=,r=')),
      ).toBe(true);
      expect(trace.join('\n')).not.toContain(PASSWORD);
      const error = await expectFailure(
        connect(tcp('rep_plus', { password: 'wrong', sslmode: 'require', channel_binding: 'require' }), {
          env: env(),
        }),
        AuthenticationError,
      );
      expect(error.code).toBe('WAL_ERR_AUTH_FAILED');
      // Without TLS, channel binding cannot be had.
      const plain = await expectFailure(
        connect(tcp('rep_scram', { password: PASSWORD, channel_binding: 'require' }), { env: env() }),
        AuthenticationError,
      );
      expect(plain.code).toBe('WAL_ERR_AUTH_CHANNEL_BINDING');
    });

    it('takes the password from .pgpass and says so when it is wrong', async () => {
      const passfile = join(home, 'pgpass');
      await writeFile(
        passfile,
        `127.0.0.1:${cluster.port}:replication:rep_scram:${PASSWORD.replaceAll('\\', '\\\\').replaceAll(':', '\\:')}\n`,
      );
      await chmod(passfile, 0o600);
      const connection = await connect(tcp('rep_scram', { passfile }), { env: env() });
      await connection.close();
      await writeFile(passfile, `*:*:*:rep_scram:nope\n`);
      const error = await expectFailure(
        connect(tcp('rep_scram', { passfile }), { env: env() }),
        AuthenticationError,
      );
      expect(error.code).toBe('WAL_ERR_AUTH_FAILED');
      expect(error.message).toContain(`password retrieved from file "${passfile}"`);
    });

    it('reports a missing REPLICATION attribute and a missing pg_hba.conf entry', async () => {
      const permission = await expectFailure(
        connect(tcp('no_replication'), { env: env() }),
        AuthenticationError,
      );
      expect(permission.code).toBe('WAL_ERR_AUTH_NO_REPLICATION_PERMISSION');
      expect(permission.sqlState).toBe('42501');
      // libpq's message with the server's words (16 changed them, and added a DETAIL); what to do
      // is the advice.
      expect(permission.message).toMatch(
        /^connection to server at "[^"]+", port \d+ failed: FATAL: {2}(must be superuser or replication role|permission denied to start WAL sender)/,
      );
      expect(permission.advice).toContain('REPLICATION');
      const rejected = await expectFailure(connect(tcp('nobody'), { env: env() }), AuthenticationError);
      expect(rejected.code).toBe('WAL_ERR_AUTH_REJECTED');
      expect(rejected.sqlState).toBe('28000');
    });
  });

  describe('sslmode', () => {
    it('disable, allow, prefer and require choose the transport like libpq', async () => {
      const expectations: [string, boolean][] = [
        ['disable', false],
        ['allow', false],
        ['prefer', true],
        ['require', true],
      ];
      for (const [sslmode, usesTls] of expectations) {
        const connection = await connect(tcp('rep_trust', { sslmode }), { env: env() });
        expect([sslmode, connection.usesTls]).toEqual([sslmode, usesTls]);
        await connection.close();
      }
    });

    it('prefer falls back to plaintext when the SSL login is refused (hostnossl)', async () => {
      const connection = await connect(tcp('rep_nossl', { sslmode: 'prefer' }), { env: env() });
      expect(connection.usesTls).toBe(false);
      await connection.close();
    });

    it('verify-ca and verify-full accept the right CA and host', async () => {
      const sslrootcert = cluster.certificates!.caCertPath;
      for (const [sslmode, host] of [
        ['verify-ca', '127.0.0.1'],
        ['verify-full', 'localhost'],
        ['verify-full', '127.0.0.1'],
      ] as const) {
        const connection = await connect(tcp('rep_trust', { sslmode, sslrootcert, host }), { env: env() });
        expect(connection.usesTls).toBe(true);
        await connection.close();
      }
    });

    it('verify-full fails on a host name the certificate does not list', async () => {
      const error = await expectFailure(
        connect(
          tcp('rep_trust', {
            sslmode: 'verify-full',
            sslrootcert: cluster.certificates!.caCertPath,
            host: 'wrong.example',
            hostaddr: '127.0.0.1',
          }),
          { env: env() },
        ),
        TlsError,
      );
      expect(error.code).toBe('WAL_ERR_TLS_HOST_MISMATCH');
      expect(error.message).toContain('does not match host name "wrong.example"');
    });

    it('verification fails against another CA; require verifies when ~/.postgresql/root.crt exists', async () => {
      const other = await createCertificateAuthority('another CA');
      const otherPath = join(home, 'other-ca.crt');
      await writeFile(otherPath, other.certificatePem);
      const error = await expectFailure(
        connect(tcp('rep_trust', { sslmode: 'verify-ca', sslrootcert: otherPath }), { env: env() }),
        TlsError,
      );
      expect(error.code).toBe('WAL_ERR_TLS_VERIFY');

      const missing = await expectFailure(
        connect(tcp('rep_trust', { sslmode: 'verify-ca', sslrootcert: join(home, 'none.crt') }), {
          env: env(),
        }),
        TlsError,
      );
      expect(missing.code).toBe('WAL_ERR_TLS_ROOT_CERT_MISSING');

      const otherHome = await mkdtemp(join(tmpdir(), 'libpq-lite-home2-'));
      try {
        await mkdir(join(otherHome, '.postgresql'));
        await writeFile(join(otherHome, '.postgresql', 'root.crt'), other.certificatePem);
        const required = await expectFailure(
          connect(tcp('rep_trust', { sslmode: 'require' }), { env: { HOME: otherHome } }),
          TlsError,
        );
        expect(required.code).toBe('WAL_ERR_TLS_VERIFY');
      } finally {
        await rm(otherHome, { recursive: true, force: true });
      }
    });

    it('authenticates with a client certificate (sslcert, sslkey)', async () => {
      const files = await cluster.createClientCertificate('rep_cert');
      const connection = await connect(
        tcp('rep_cert', {
          sslmode: 'verify-full',
          host: 'localhost',
          sslrootcert: cluster.certificates!.caCertPath,
          sslcert: files.certPath,
          sslkey: files.keyPath,
        }),
        { env: env() },
      );
      expect(connection.usesTls).toBe(true);
      await connection.close();
      // Without the certificate the server refuses the login.
      const error = await expectFailure(
        connect(tcp('rep_cert', { sslmode: 'require' }), { env: env() }),
        AuthenticationError,
      );
      expect(error.code).toBe('WAL_ERR_AUTH_REJECTED');
    });

    it.skipIf(mainVersion < 17)('sslnegotiation=direct uses TLS with ALPN from the first byte', async () => {
      const connection = await connect(tcp('rep_trust', { sslmode: 'require', sslnegotiation: 'direct' }), {
        env: env(),
      });
      expect(connection.usesTls).toBe(true);
      await connection.close();
    });

    it('connects over the Unix socket without TLS', async () => {
      const connection = await connect(
        {
          host: cluster.socketDir,
          port: String(cluster.port),
          user: 'rep_trust',
          dbname: 'replication',
          replication: 'true',
        },
        { env: env() },
      );
      expect(connection.usesTls).toBe(false);
      await connection.close();
    });

    it.skipIf(mainVersion < 18)('negotiates protocol 3.2 with max_protocol_version=latest', async () => {
      const connection = await connect(tcp('rep_trust', { max_protocol_version: 'latest' }), { env: env() });
      expect(connection.protocolVersion).toBe(196610);
      expect(connection.cancelKeyLength).toBeGreaterThan(4);
      await connection.close();
    });
  });

  describe('replication commands', () => {
    it('IDENTIFY_SYSTEM, SHOW, slots and START_REPLICATION return what the server has', async () => {
      const connection = await connect(tcp('rep_trust', { application_name: 'libpq-lite-test' }), {
        env: env(),
      });
      try {
        const [control] = await cluster.sql<{ system_identifier: string }>(
          'SELECT system_identifier FROM pg_control_system()',
        );
        const system = await connection.identifySystem();
        expect(system.systemId).toBe(BigInt(control!.system_identifier));
        expect(system.timeline).toBe(1);
        expect(system.databaseName).toBeNull();
        expect(await connection.show('wal_segment_size')).toBe('1MB');

        const created = await connection.createReplicationSlot('lite_slot', { reserveWal: true });
        expect(created).toEqual({ slotName: 'lite_slot', consistentPoint: 0n });
        const slot = await connection.readReplicationSlot('lite_slot');
        expect(slot.slotType).toBe('physical');
        expect(slot.restartLsn).not.toBeNull();
        expect(slot.restartTimeline).toBe(1);
        expect(await connection.readReplicationSlot('no_such_slot')).toEqual({
          slotType: null,
          restartLsn: null,
          restartTimeline: null,
        });
        await expect(connection.createReplicationSlot('lite_slot')).rejects.toMatchObject({
          sqlState: '42710',
        });

        const [{ lsn } = { lsn: '' }] = await cluster.sql<{ lsn: string }>(
          'SELECT pg_current_wal_flush_lsn()::text AS lsn',
        );
        const segmentStart = parseLsn(lsn) & ~0xfffffn;
        const stream = await connection.startReplication({
          slot: 'lite_slot',
          startLsn: segmentStart,
          timeline: 1,
        });
        if (stream.kind !== 'copy') throw new Error('expected COPY');
        const data = await firstWalData(stream);
        expect(data.dataStart).toBe(segmentStart);
        expect(data.data.length).toBeGreaterThan(0);
        const [active] = await cluster.sql<{ application_name: string }>(
          "SELECT application_name FROM pg_stat_replication WHERE application_name = 'libpq-lite-test'",
        );
        expect(active?.application_name).toBe('libpq-lite-test');
        const end = await stopStream(stream);
        expect(end.serverClosed).toBe(false);
        expect(end.commandTags.at(-1)).toBe('START_REPLICATION');
        // The session is usable again after COPY.
        await connection.dropReplicationSlot('lite_slot', { wait: true });
        await expect(connection.dropReplicationSlot('lite_slot')).rejects.toMatchObject({
          sqlState: '42704',
        });
        await expect(connection.show('no_such_setting')).rejects.toMatchObject({ sqlState: '42704' });
      } finally {
        await connection.close();
      }
    });
  });
});

describe.each(otherVersions)('libpq-lite against PostgreSQL %i (smoke)', (version) => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({
      version,
      segmentSizeMb: 1,
      users: [{ name: 'rep_scram', password: PASSWORD, replication: true }],
      hba: ['local replication all trust', 'host replication rep_scram 127.0.0.1/32 scram-sha-256'],
    });
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('authenticates, identifies the system and streams WAL', async () => {
    const connection = await connect(
      {
        host: '127.0.0.1',
        port: String(cluster.port),
        user: 'rep_scram',
        password: PASSWORD,
        dbname: 'replication',
        replication: 'true',
      },
      { env: env() },
    );
    try {
      expect(Math.floor(connection.serverVersion / 10000)).toBe(version);
      const system = await connection.identifySystem();
      expect(system.timeline).toBe(1);
      expect(await connection.show('wal_segment_size')).toBe('1MB');
      await connection.createReplicationSlot('smoke', { reserveWal: true });
      if (version >= 15) expect((await connection.readReplicationSlot('smoke')).slotType).toBe('physical');
      const start = system.xlogPosition & ~0xfffffn;
      const stream = await connection.startReplication({ slot: 'smoke', startLsn: start, timeline: 1 });
      if (stream.kind !== 'copy') throw new Error('expected COPY');
      expect((await firstWalData(stream)).dataStart).toBe(start);
      await stopStream(stream);
      await connection.dropReplicationSlot('smoke');
    } finally {
      await connection.close();
    }
  });
});
