import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ArchiveError, type CleanupEvent, type CleanupOptions, cleanupArchive } from './index.js';

let archive: string;

beforeEach(async () => {
  archive = await mkdtemp(join(tmpdir(), 'wal-cleanup-'));
  for (const name of [
    '00000002000000000000000F.lz4.partial',
    '000000010000000000000001.gz',
    '000000010000000000000010',
    '00000002.history',
    '000000010000000000000001.00000028.backup',
  ])
    await writeFile(join(archive, name), '');
});
afterEach(async () => {
  await rm(archive, { recursive: true, force: true });
});

async function events(options: Partial<CleanupOptions> = {}): Promise<CleanupEvent[]> {
  const seen: CleanupEvent[] = [];
  for await (const event of cleanupArchive({ archive, oldestKept: '000000010000000000000010', ...options }))
    seen.push(event);
  return seen;
}

async function failure(options: Partial<CleanupOptions>): Promise<ArchiveError> {
  const error = await events(options).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(ArchiveError);
  return error as ArchiveError;
}

describe('cleanupArchive', () => {
  it('says what it keeps, then removes older segments oldest first; history and backup files stay', async () => {
    expect(await events()).toEqual([
      { kind: 'keeping', path: `${archive}/000000010000000000000010` },
      {
        kind: 'removing',
        path: `${archive}/000000010000000000000001.gz`,
        name: '000000010000000000000001.gz',
        dryRun: false,
      },
      {
        kind: 'removing',
        path: `${archive}/00000002000000000000000F.lz4.partial`,
        name: '00000002000000000000000F.lz4.partial',
        dryRun: false,
      },
    ]);
    expect((await readdir(archive)).sort()).toEqual([
      '000000010000000000000001.00000028.backup',
      '000000010000000000000010',
      '00000002.history',
    ]);
  });

  it('removes nothing on a dry run, and nothing the caller did not ask for by going on', async () => {
    const before = (await readdir(archive)).sort();
    expect((await events({ dryRun: true })).filter((event) => event.kind === 'removing')).toHaveLength(2);
    expect((await readdir(archive)).sort()).toEqual(before);
    for await (const event of cleanupArchive({ archive, oldestKept: '000000010000000000000010' }))
      if (event.kind === 'removing') break;
    expect((await readdir(archive)).sort()).toEqual(before);
  });

  it('checks the archive before the name, as pg_archivecleanup does', async () => {
    const missing = await failure({ archive: join(archive, 'none'), oldestKept: 'bad' });
    expect(missing.code).toBe('WAL_ERR_ARCHIVE_MISSING');
    expect(missing.message).toBe(`archive location "${join(archive, 'none')}" does not exist`);
    const file = await failure({ archive: join(archive, '00000002.history') });
    expect(file.message).toMatch(/is not a directory$/);
    expect((await failure({ oldestKept: '00000002.history' })).code).toBe('WAL_ERR_ARCHIVE_INVALID_NAME');
  });

  it('stops at a file it cannot remove', async () => {
    await mkdir(join(archive, '000000010000000000000000'));
    const error = await failure({});
    expect(error.code).toBe('WAL_ERR_ARCHIVE_REMOVE');
    expect(error.message).toBe(`could not remove file "${archive}/000000010000000000000000": Is a directory`);
    expect(await readdir(archive)).toContain('000000010000000000000001.gz');
  });
});
