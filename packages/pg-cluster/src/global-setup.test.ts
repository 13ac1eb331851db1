import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import setup from './global-setup.js';

describe('integration globalSetup', () => {
  const saved = { ...process.env };
  let emptyDirectory: string;

  beforeEach(async () => {
    emptyDirectory = await mkdtemp(join(tmpdir(), 'wal-no-tools-'));
    process.env.WAL_TEST_PG_VERSIONS = '14,18';
    process.env.WAL_PG_CLIENT_BIN = emptyDirectory;
  });
  afterEach(async () => {
    process.env = { ...saved };
    vi.restoreAllMocks();
    await rm(emptyDirectory, { recursive: true, force: true });
  });

  it('says which versions run and that comparison tests are skipped without client tools', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    delete process.env.WAL_REQUIRE_CLIENT_TOOLS;
    await setup();
    expect(log).toHaveBeenCalledOnce();
    expect(log.mock.calls[0]?.[0]).toBe(
      `[pg-cluster] PostgreSQL server versions: 14, 18; client tools not found (looked in ${emptyDirectory}); comparison tests are skipped.`,
    );
  });

  it('fails the run when WAL_REQUIRE_CLIENT_TOOLS=1 and the tools are missing', async () => {
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    process.env.WAL_REQUIRE_CLIENT_TOOLS = '1';
    await expect(setup()).rejects.toMatchObject({
      code: 'WAL_ERR_CLUSTER_CLIENT_TOOLS',
      message: expect.stringContaining('install Debian postgresql-15'),
    });
  });

  it('rejects a version list with a typo before any test runs', async () => {
    process.env.WAL_TEST_PG_VERSIONS = '14,81';
    await expect(setup()).rejects.toMatchObject({ code: 'WAL_ERR_CLUSTER_VERSION' });
  });
});
