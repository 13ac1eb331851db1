import { describe, expect, it } from 'vitest';
import {
  ADMIN_ROLE,
  type ClusterOptions,
  DEFAULT_HBA,
  quoteSettingValue,
  renderHba,
  renderSettings,
  resolveClusterOptions,
  setupStatements,
} from './configuration.js';
import { ClusterError } from './errors.js';
import { startCluster } from './index.js';

function rejection(options: ClusterOptions): ClusterError {
  try {
    resolveClusterOptions(options);
  } catch (error) {
    if (error instanceof ClusterError) return error;
    throw error;
  }
  throw new Error(`options were accepted: ${JSON.stringify(options)}`);
}

describe('resolveClusterOptions', () => {
  it('fills in defaults', () => {
    expect(resolveClusterOptions()).toEqual({
      version: 18,
      segmentSizeMb: 16,
      tls: false,
      hba: [...DEFAULT_HBA],
      settings: {},
      users: [],
    });
  });

  it.each([
    [
      { version: 13 },
      'WAL_ERR_CLUSTER_VERSION',
      /version 13 is not supported; choose one of 14, 15, 16, 17, 18/,
    ],
    [{ version: 18.5 }, 'WAL_ERR_CLUSTER_VERSION', /version 18.5/],
    [
      { segmentSizeMb: 3 },
      'WAL_ERR_CLUSTER_OPTIONS',
      /segmentSizeMb 3 is invalid; use a power of two from 1 to 1024/,
    ],
    [{ segmentSizeMb: 2048 }, 'WAL_ERR_CLUSTER_OPTIONS', /segmentSizeMb 2048/],
    [{ segmentSizeMb: 0 }, 'WAL_ERR_CLUSTER_OPTIONS', /segmentSizeMb 0/],
    [{ hba: [] }, 'WAL_ERR_CLUSTER_OPTIONS', /hba must be a non-empty list/],
    [
      { hba: ['local all all trust\nhost all all 0.0.0.0/0 trust'] },
      'WAL_ERR_CLUSTER_OPTIONS',
      /one non-empty pg_hba.conf line/,
    ],
    [{ hba: ['  '] }, 'WAL_ERR_CLUSTER_OPTIONS', /one non-empty pg_hba.conf line/],
    [{ settings: { 'bad name': 'x' } }, 'WAL_ERR_CLUSTER_OPTIONS', /setting name "bad name"/],
    [
      { settings: { work_mem: '1MB\nfsync = on' } },
      'WAL_ERR_CLUSTER_OPTIONS',
      /setting work_mem must be a one-line string/,
    ],
    [{ users: [{ name: '1abc' }] }, 'WAL_ERR_CLUSTER_OPTIONS', /user name "1abc" is invalid/],
    [{ users: [{ name: 'pg_reader' }] }, 'WAL_ERR_CLUSTER_OPTIONS', /prefix pg_ is reserved/],
    [{ users: [{ name: 'postgres' }] }, 'WAL_ERR_CLUSTER_OPTIONS', /clashes with a built-in role/],
    [{ users: [{ name: ADMIN_ROLE }] }, 'WAL_ERR_CLUSTER_OPTIONS', /clashes with a built-in role/],
    [{ users: [{ name: 'alice' }, { name: 'alice' }] }, 'WAL_ERR_CLUSTER_OPTIONS', /"alice" is listed twice/],
    [{ users: [{ name: 'alice', password: 'a\nb' }] }, 'WAL_ERR_CLUSTER_OPTIONS', /invalid password/],
    [
      { users: [{ name: 'alice', passwordEncryption: 'md5' as const }] },
      'WAL_ERR_CLUSTER_OPTIONS',
      /passwordEncryption needs a password/,
    ],
    [
      { users: [{ name: 'alice', password: 'x', passwordEncryption: 'sha1' as 'md5' }] },
      'WAL_ERR_CLUSTER_OPTIONS',
      /passwordEncryption must be "md5" or "scram-sha-256"/,
    ],
  ])('rejects %j', (options, code, message) => {
    const error = rejection(options as ClusterOptions);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });

  it('never echoes a password in an error', () => {
    const error = rejection({ users: [{ name: 'alice', password: 'hunter2\n' }] });
    expect(error.message).not.toContain('hunter2');
  });

  it('makes startCluster reject before anything is created', async () => {
    await expect(startCluster({ version: 9 })).rejects.toMatchObject({ code: 'WAL_ERR_CLUSTER_VERSION' });
  });
});

describe('configuration files', () => {
  it('quotes every setting value, doubling quotes and backslashes', () => {
    expect(quoteSettingValue('16MB')).toBe("'16MB'");
    expect(quoteSettingValue("it's")).toBe("'it''s'");
    expect(quoteSettingValue('C:\\dir')).toBe("'C:\\\\dir'");
    expect(renderSettings({ fsync: 'off', log_line_prefix: '%m [%p] ' })).toBe(
      "fsync = 'off'\nlog_line_prefix = '%m [%p] '",
    );
  });

  it('puts the helper role first in pg_hba.conf, then the caller lines in order', () => {
    expect(
      renderHba(['hostssl all alice 127.0.0.1/32 cert', 'host all all 0.0.0.0/0 reject']).split('\n'),
    ).toEqual([
      expect.stringMatching(/^#/),
      `local all ${ADMIN_ROLE} trust`,
      `local replication ${ADMIN_ROLE} trust`,
      'hostssl all alice 127.0.0.1/32 cert',
      'host all all 0.0.0.0/0 reject',
      '',
    ]);
  });

  it('creates roles with the requested attributes and password encryption, one statement per line', () => {
    expect(
      setupStatements(
        [
          { name: 'replicator', password: "o'brien", replication: true },
          { name: 'legacy', password: 'x', passwordEncryption: 'md5' },
          { name: 'Mixed"Case', superuser: true },
        ],
        'superpass',
      ),
    ).toEqual([
      `CREATE ROLE "${ADMIN_ROLE}" SUPERUSER LOGIN REPLICATION`,
      "SET password_encryption = 'scram-sha-256'",
      `ALTER ROLE "postgres" PASSWORD 'superpass'`,
      "SET password_encryption = 'scram-sha-256'",
      `CREATE ROLE "replicator" LOGIN REPLICATION PASSWORD 'o''brien'`,
      "SET password_encryption = 'md5'",
      `CREATE ROLE "legacy" LOGIN PASSWORD 'x'`,
      'CREATE ROLE "Mixed""Case" LOGIN SUPERUSER',
    ]);
  });
});
