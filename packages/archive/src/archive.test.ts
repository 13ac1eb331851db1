import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants, gzipSync } from 'node:zlib';
import { compressFrameSync } from 'lz4-napi';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ArchiveError,
  findArchiveFile,
  listArchive,
  restoreFromArchive,
  restoreWithRetries,
} from './index.js';
import { SEGMENT_SIZE, segment } from './testing/index.js';

const SEGMENT_3 = '000000010000000000000003';

let archive: string;
let target: string;

beforeEach(async () => {
  archive = await mkdtemp(join(tmpdir(), 'wal-archive-'));
  target = await mkdtemp(join(tmpdir(), 'wal-target-'));
});
afterEach(async () => {
  await rm(archive, { recursive: true, force: true });
  await rm(target, { recursive: true, force: true });
});

async function restore(wanted: string, options: { partial?: boolean } = {}) {
  return restoreFromArchive({
    archive,
    wanted,
    target: join(target, 'RECOVERYXLOG'),
    sync: false,
    ...options,
  });
}

async function restoreError(wanted: string): Promise<ArchiveError> {
  const error = await restore(wanted).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(ArchiveError);
  // Nothing is left behind: neither the target nor a temporary file.
  expect(await readdir(target)).toEqual([]);
  return error as ArchiveError;
}

describe('listArchive', () => {
  it('lists segments and history files by timeline and position, and skips other names', async () => {
    for (const name of [
      '000000020000000000000004',
      '00000002.history',
      '000000010000000000000005.gz.partial',
      '000000010000000000000004.lz4',
      'notes.txt',
      '000000010000000000000004.00000028.backup',
    ]) {
      await writeFile(join(archive, name), '');
    }
    const names = (await listArchive(archive)).map((entry) => entry.name);
    expect(names).toEqual([
      '000000010000000000000004.lz4',
      '000000010000000000000005.gz.partial',
      '00000002.history',
      '000000020000000000000004',
    ]);
  });
});

describe('restoreFromArchive', () => {
  it.each([
    ['plain', '', (data: Buffer) => data],
    ['gzip', '.gz', (data: Buffer) => gzipSync(data)],
    ['lz4', '.lz4', (data: Buffer) => compressFrameSync(data)],
  ])('restores a %s segment byte for byte', async (_form, suffix, compress) => {
    await writeFile(join(archive, `${SEGMENT_3}${suffix}`), compress(segment(3)));
    const result = await restore(SEGMENT_3);
    expect(result).toMatchObject({ status: 'restored', bytes: SEGMENT_SIZE, paddedBytes: 0 });
    expect((await readFile(join(target, 'RECOVERYXLOG'))).equals(segment(3))).toBe(true);
    expect(await readdir(target)).toEqual(['RECOVERYXLOG']);
  });

  it('answers not-found for a missing segment and a missing history file, writing nothing', async () => {
    expect(await restore(SEGMENT_3)).toEqual({ status: 'not-found' });
    expect(await restore('00000002.history')).toEqual({ status: 'not-found' });
    expect(await readdir(target)).toEqual([]);
  });

  it('restores a history file as stored', async () => {
    await writeFile(join(archive, '00000002.history'), '1\t0/3000000\tno recovery target specified\n');
    expect(await restore('00000002.history')).toMatchObject({ status: 'restored', bytes: 41 });
  });

  it.each([
    ['plain', '.partial', (data: Buffer) => data],
    ['gzip, unfinished stream', '.gz.partial', (data: Buffer) => flushedGzip(data)],
    ['lz4, unended frame', '.lz4.partial', (data: Buffer) => compressFrameSync(data).subarray(0, -4)],
  ])('pads the newest %s partial with zeros', async (_form, suffix, compress) => {
    await writeFile(join(archive, '000000010000000000000002'), segment(2));
    await writeFile(join(archive, `${SEGMENT_3}${suffix}`), compress(segment(3, 300_000)));
    const result = await restore(SEGMENT_3);
    expect(result).toMatchObject({ status: 'restored', bytes: 300_000, paddedBytes: SEGMENT_SIZE - 300_000 });
    const restored = await readFile(join(target, 'RECOVERYXLOG'));
    expect(restored.length).toBe(SEGMENT_SIZE);
    expect(restored.subarray(0, 300_000).equals(segment(3, 300_000))).toBe(true);
    expect(restored.subarray(300_000).every((byte) => byte === 0)).toBe(true);
  });

  it('never serves a stale partial behind a later segment of its timeline', async () => {
    await writeFile(join(archive, `${SEGMENT_3}.partial`), segment(3, 8192));
    await writeFile(join(archive, '000000010000000000000004.gz'), gzipSync(segment(4)));
    expect(await restore(SEGMENT_3)).toEqual({ status: 'not-found' });
  });

  it('serves a partial when only another timeline has later segments, and not with partial: false', async () => {
    await writeFile(join(archive, `${SEGMENT_3}.partial`), segment(3, 8192));
    await writeFile(join(archive, '000000020000000000000004'), segment(4));
    expect(await restore(SEGMENT_3, { partial: false })).toEqual({ status: 'not-found' });
    expect(await restore(SEGMENT_3)).toMatchObject({ status: 'restored', paddedBytes: SEGMENT_SIZE - 8192 });
  });

  it('prefers a complete segment to a partial of the same name', async () => {
    await writeFile(join(archive, `${SEGMENT_3}.partial`), segment(3, 8192));
    await writeFile(join(archive, `${SEGMENT_3}.lz4`), compressFrameSync(segment(3)));
    expect(await restore(SEGMENT_3)).toMatchObject({
      status: 'restored',
      paddedBytes: 0,
      file: { name: `${SEGMENT_3}.lz4` },
    });
  });
});

describe('restoreFromArchive refuses bad input', () => {
  it('a corrupt .gz: damaged data or a wrong checksum', async () => {
    const compressed = gzipSync(segment(3));
    compressed.writeUInt8(compressed.readUInt8(compressed.length >> 1) ^ 0xff, compressed.length >> 1);
    await writeFile(join(archive, `${SEGMENT_3}.gz`), compressed);
    // Damaged deflate data may decode to too many bytes before the checksum is reached.
    expect((await restoreError(SEGMENT_3)).code).toMatch(/^WAL_ERR_ARCHIVE_(CORRUPT|WRONG_SIZE)$/);
    const badChecksum = gzipSync(segment(3));
    badChecksum.writeUInt8(badChecksum.readUInt8(badChecksum.length - 6) ^ 0xff, badChecksum.length - 6);
    await writeFile(join(archive, `${SEGMENT_3}.gz`), badChecksum);
    expect((await restoreError(SEGMENT_3)).code).toBe('WAL_ERR_ARCHIVE_CORRUPT');
  });

  it('a truncated complete .gz', async () => {
    await writeFile(join(archive, `${SEGMENT_3}.gz`), gzipSync(segment(3)).subarray(0, -100));
    expect((await restoreError(SEGMENT_3)).code).toBe('WAL_ERR_ARCHIVE_CORRUPT');
  });

  it('a corrupt .lz4', async () => {
    const compressed = compressFrameSync(segment(3));
    compressed.fill(0xab, 20, 60);
    await writeFile(join(archive, `${SEGMENT_3}.lz4`), compressed);
    expect((await restoreError(SEGMENT_3)).code).toBe('WAL_ERR_ARCHIVE_CORRUPT');
  });

  it('a complete segment of the wrong size, plain or compressed', async () => {
    await writeFile(join(archive, SEGMENT_3), segment(3, 100_000));
    expect((await restoreError(SEGMENT_3)).code).toBe('WAL_ERR_ARCHIVE_WRONG_SIZE');
    await writeFile(
      join(archive, '000000010000000000000004.gz'),
      gzipSync(Buffer.concat([segment(4), Buffer.alloc(10)])),
    );
    expect((await restoreError('000000010000000000000004')).code).toBe('WAL_ERR_ARCHIVE_WRONG_SIZE');
  });

  it('a segment stored under another name, or no WAL at all', async () => {
    await writeFile(join(archive, SEGMENT_3), segment(4));
    expect((await restoreError(SEGMENT_3)).message).toMatch(/not the WAL segment 000000010000000000000003/);
    await writeFile(join(archive, '000000010000000000000004'), Buffer.alloc(SEGMENT_SIZE, 1));
    expect((await restoreError('000000010000000000000004')).code).toBe('WAL_ERR_ARCHIVE_CORRUPT');
    await writeFile(join(archive, '000000010000000000000005'), Buffer.alloc(10));
    expect((await restoreError('000000010000000000000005')).code).toBe('WAL_ERR_ARCHIVE_WRONG_SIZE');
  });

  it('an unreadable file and a missing archive directory: errors, never "not found"', async () => {
    await mkdir(join(archive, SEGMENT_3));
    const error = await restoreError(SEGMENT_3);
    expect(error).toMatchObject({ code: 'WAL_ERR_ARCHIVE_UNREADABLE', retryable: true });
    await rm(archive, { recursive: true });
    expect((await restoreError('00000002.history')).code).toBe('WAL_ERR_ARCHIVE_UNREADABLE');
  });

  it('a name that is not a WAL file name', async () => {
    for (const name of [
      '../etc/passwd',
      `${SEGMENT_3}.gz`,
      `${SEGMENT_3}.partial`,
      'RECOVERYXLOG',
      '2.history',
    ]) {
      await expect(findArchiveFile(archive, name)).rejects.toMatchObject({
        code: 'WAL_ERR_ARCHIVE_INVALID_NAME',
      });
    }
  });

  it('retries a read failure with backoff, then gives up', async () => {
    await mkdir(join(archive, SEGMENT_3));
    const retries: number[] = [];
    const options = { archive, wanted: SEGMENT_3, target: join(target, 'RECOVERYXLOG'), sync: false };
    const failure = restoreWithRetries(options, {
      attempts: 3,
      firstDelayMs: 1,
      onRetry: (_error, _attempt, delay) => retries.push(delay),
    });
    await expect(failure).rejects.toMatchObject({ code: 'WAL_ERR_ARCHIVE_UNREADABLE' });
    expect(retries).toEqual([1, 2]);
  });
});

/** A gzip stream flushed but not finished, as the receiver leaves a compressed `.partial`. */
function flushedGzip(data: Buffer): Buffer {
  const full = gzipSync(data, { finishFlush: constants.Z_SYNC_FLUSH });
  return full;
}
