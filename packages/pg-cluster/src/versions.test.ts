import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientTool, clientToolsPath, testedVersions } from './versions.js';

describe('testedVersions', () => {
  it('defaults to every supported version', () => {
    expect(testedVersions({})).toEqual([14, 15, 16, 17, 18]);
    expect(testedVersions({ WAL_TEST_PG_VERSIONS: ' ' })).toEqual([14, 15, 16, 17, 18]);
  });

  it('reads a comma-separated list, sorted and without duplicates', () => {
    expect(testedVersions({ WAL_TEST_PG_VERSIONS: '18, 14,18' })).toEqual([14, 18]);
  });

  it.each(['13', '14,19', '14,,18', 'latest', '15.2', '0x10'])('rejects WAL_TEST_PG_VERSIONS=%j', (text) => {
    expect(() => testedVersions({ WAL_TEST_PG_VERSIONS: text })).toThrow(
      expect.objectContaining({
        code: 'WAL_ERR_CLUSTER_VERSION',
        message: expect.stringContaining('not a supported PostgreSQL major version'),
      }),
    );
  });
});

describe('clientToolsPath', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'wal-tools-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('is undefined when pg_waldump and pg_receivewal are not both executable there', async () => {
    expect(clientToolsPath({ WAL_PG_CLIENT_BIN: directory })).toBeUndefined();
    await writeFile(join(directory, 'pg_waldump'), '#!/bin/sh\n', { mode: 0o755 });
    await writeFile(join(directory, 'pg_receivewal'), '#!/bin/sh\n', { mode: 0o644 });
    await chmod(join(directory, 'pg_receivewal'), 0o644);
    // access(X_OK) needs an execute bit even for root, so a 0644 file does not count.
    expect(clientToolsPath({ WAL_PG_CLIENT_BIN: directory })).toBeUndefined();
  });

  it('honours WAL_PG_CLIENT_BIN and finds single tools in it', async () => {
    await chmod(join(directory, 'pg_receivewal'), 0o755);
    expect(clientToolsPath({ WAL_PG_CLIENT_BIN: directory })).toBe(directory);
    expect(clientTool('pg_waldump', { WAL_PG_CLIENT_BIN: directory })).toBe(join(directory, 'pg_waldump'));
    expect(clientTool('psql', { WAL_PG_CLIENT_BIN: directory })).toBeUndefined();
  });
});
