import { type Cluster, startCluster, startStandby, testedVersions } from '@wal/pg-cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionError, connect } from './index.js';

// in_hot_standby is what the choice rests on: every tested version (14+) reports it.
const version = Math.max(...testedVersions());

describe(`target_session_attrs with a PostgreSQL ${version} primary and standby`, () => {
  let primary: Cluster;
  let standby: Cluster;

  beforeAll(async () => {
    primary = await startCluster({ version, segmentSizeMb: 1 });
    standby = await startStandby(primary);
  }, 120_000);
  afterAll(async () => {
    await standby?.stop();
    await primary?.stop();
  });

  /** A physical replication connection over both servers, in the given order. */
  function open(order: Cluster[], attrs: string, extra: Record<string, string> = {}) {
    return connect(
      {
        host: order.map((cluster) => cluster.host).join(','),
        port: order.map((cluster) => String(cluster.port)).join(','),
        user: primary.superuser,
        dbname: 'replication',
        replication: 'true',
        target_session_attrs: attrs,
        ...extra,
      },
      { env: { HOME: '/nonexistent' } },
    );
  }

  async function portOf(order: Cluster[], attrs: string): Promise<number> {
    const connection = await open(order, attrs);
    try {
      return connection.port;
    } finally {
      await connection.close();
    }
  }

  it('reports in_hot_standby and default_transaction_read_only to a walsender session', async () => {
    const connection = await open([standby], 'any');
    expect(connection.parameters.get('in_hot_standby')).toBe('on');
    expect(connection.parameters.get('default_transaction_read_only')).toBe('off');
    await connection.close();
  });

  it('picks the server each value asks for, whatever the host order', async () => {
    for (const order of [
      [primary, standby],
      [standby, primary],
    ]) {
      expect(await portOf(order, 'primary')).toBe(primary.port);
      expect(await portOf(order, 'read-write')).toBe(primary.port);
      expect(await portOf(order, 'standby')).toBe(standby.port);
      expect(await portOf(order, 'read-only')).toBe(standby.port);
      expect(await portOf(order, 'prefer-standby')).toBe(standby.port);
      expect(await portOf(order, 'any')).toBe(order[0]!.port);
    }
  });

  it("falls back to any server with prefer-standby, and fails with libpq's reasons otherwise", async () => {
    expect(await portOf([primary], 'prefer-standby')).toBe(primary.port);
    const failure = await open([primary, primary], 'standby').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ConnectionError);
    expect((failure as ConnectionError).code).toBe('WAL_ERR_CONNECTION_TARGET_SESSION');
    expect((failure as Error).message).toBe(
      [
        `connection to server at "127.0.0.1", port ${primary.port} failed: server is not in hot standby mode`,
        `connection to server at "127.0.0.1", port ${primary.port} failed: server is not in hot standby mode`,
      ].join('\n'),
    );
    const readOnly = await open([standby], 'read-write').catch((error: unknown) => error);
    expect((readOnly as Error).message).toBe(
      `connection to server at "127.0.0.1", port ${standby.port} failed: session is read-only`,
    );
    const primaryOnly = await open([standby], 'primary').catch((error: unknown) => error);
    expect((primaryOnly as Error).message).toBe(
      `connection to server at "127.0.0.1", port ${standby.port} failed: server is in hot standby mode`,
    );
  });

  it('treats a primary with default_transaction_read_only=on as read-only but still a primary', async () => {
    const options = { options: '-c default_transaction_read_only=on' };
    const connection = await open([primary], 'primary', options);
    expect(connection.port).toBe(primary.port);
    await connection.close();
    const failure = await open([primary], 'read-write', options).catch((error: unknown) => error);
    expect((failure as Error).message).toContain('failed: session is read-only');
  });
});
