import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { type RunningS3rver, startS3rver } from '@wal/fake-s3';
import { openS3Store } from '@wal/s3';
import { compressFrameSync } from 'lz4-napi';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type ArchiveSource,
  findArchiveFile,
  listArchive,
  openArchive,
  readArchiveFileHead,
  restoreFromArchive,
  runPrefetcher,
} from './index.js';
import { SEGMENT_SIZE, segment } from './testing/index.js';

/**
 * The object-store source against s3rver, a real S3 HTTP implementation. Each case is written
 * into a directory and uploaded under a fresh prefix; the archive read from the bucket must answer
 * exactly as the directory does: the same file, bytes and padding, or the same error code.
 */

const SEGMENT_3 = '000000010000000000000003';
const BUCKET = 'wal-archive';

const name = (segmentNumber: number) =>
  `0000000100000000000000${segmentNumber.toString(16).padStart(2, '0')}`;
const gzip = (data: Buffer) => zlib.gzipSync(data);
const unfinishedGzip = (data: Buffer) => zlib.gzipSync(data, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
const damaged = (data: Buffer) => {
  const copy = Buffer.from(data);
  copy.fill(0xab, 20, 60);
  return copy;
};

let s3: RunningS3rver;
let scratch: string;
let prefixes = 0;
/** Where the cases' archives go, and the AWS configuration to reach it: s3rver, or a real store. */
let store: { base: string; env: Record<string, string | undefined> };
/** What a suite uploaded, to delete from a real store afterwards. */
const uploaded: { url: string; names: string[] }[] = [];

beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET] });
  store = { base: `s3://${BUCKET}`, env: s3.env };
});
afterAll(async () => {
  await s3?.stop();
});
beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wal-s3-source-'));
});
afterEach(() => rm(scratch, { recursive: true, force: true }));

/** Opens an archive location; an `s3://` one with the store's configuration and quick retries. */
function open(location: string): Promise<ArchiveSource> {
  return openArchive(location, {
    objectStore: { env: store.env, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } },
  });
}

/** The same files in a new directory and under a new prefix of the bucket. */
async function archiveOf(
  files: Record<string, Buffer | string>,
): Promise<{ directory: string; url: string }> {
  const prefix = `case-${++prefixes}`;
  const directory = join(scratch, prefix);
  await mkdir(directory);
  const url = `${store.base}/${prefix}`;
  const bucket = openS3Store(url, { env: store.env });
  try {
    for (const [file, body] of Object.entries(files)) {
      await writeFile(join(directory, file), body);
      await bucket.put(file, Buffer.from(body));
    }
  } finally {
    bucket.close();
  }
  uploaded.push({ url, names: Object.keys(files) });
  return { directory, url };
}

/** What a restore from `location` gives: the result's shape and the bytes, or the error's code. */
async function restoreOutcome(location: string, wanted: string, partial = true) {
  const target = join(scratch, `target-${++prefixes}`);
  await mkdir(target);
  const source = await open(location);
  try {
    const result = await restoreFromArchive({
      archive: source,
      wanted,
      target: join(target, 'RECOVERYXLOG'),
      partial,
      sync: false,
    });
    if (result.status === 'not-found') return { status: result.status, left: await readdir(target) };
    const { bytes, paddedBytes, segmentSize } = result;
    // A digest: comparing two buffers of a segment element by element is slow.
    const restored = createHash('sha256')
      .update(await readFile(join(target, 'RECOVERYXLOG')))
      .digest('hex');
    return { status: result.status, name: result.file.name, bytes, paddedBytes, segmentSize, restored };
  } catch (error) {
    return { error: (error as { code?: string }).code, left: await readdir(target) };
  } finally {
    await source.close();
  }
}

const CASES: { case: string; files: Record<string, Buffer | string>; wanted: string; partial?: boolean }[] = [
  { case: 'a plain segment', files: { [SEGMENT_3]: segment(3) }, wanted: SEGMENT_3 },
  { case: 'a .gz segment', files: { [`${SEGMENT_3}.gz`]: gzip(segment(3)) }, wanted: SEGMENT_3 },
  {
    case: 'a .lz4 segment',
    files: { [`${SEGMENT_3}.lz4`]: compressFrameSync(segment(3)) },
    wanted: SEGMENT_3,
  },
  {
    case: 'a history file',
    files: { '00000002.history': '1\t0/3000000\tno recovery target specified\n' },
    wanted: '00000002.history',
  },
  { case: 'a missing segment', files: { [name(2)]: segment(2) }, wanted: SEGMENT_3 },
  { case: 'a missing history file', files: { [name(2)]: segment(2) }, wanted: '00000002.history' },
  {
    case: 'the newest plain .partial',
    files: { [name(2)]: segment(2), [`${SEGMENT_3}.partial`]: segment(3, 300_000) },
    wanted: SEGMENT_3,
  },
  {
    case: 'the newest .gz.partial, its stream unfinished',
    files: { [`${SEGMENT_3}.gz.partial`]: unfinishedGzip(segment(3, 200_000)) },
    wanted: SEGMENT_3,
  },
  {
    case: 'the newest .lz4.partial, its frame unended',
    files: { [`${SEGMENT_3}.lz4.partial`]: compressFrameSync(segment(3, 200_000)).subarray(0, -4) },
    wanted: SEGMENT_3,
  },
  {
    case: 'a .partial with partial: false',
    files: { [`${SEGMENT_3}.partial`]: segment(3, 8192) },
    wanted: SEGMENT_3,
    partial: false,
  },
  {
    case: 'a stale .partial behind a later segment',
    files: { [`${SEGMENT_3}.partial`]: segment(3, 8192), [`${name(4)}.gz`]: gzip(segment(4)) },
    wanted: SEGMENT_3,
  },
  {
    case: 'a complete segment beside its .partial',
    files: {
      [`${SEGMENT_3}.partial`]: segment(3, 8192),
      [`${SEGMENT_3}.lz4`]: compressFrameSync(segment(3)),
    },
    wanted: SEGMENT_3,
  },
  { case: 'a short plain segment', files: { [SEGMENT_3]: segment(3, 100_000) }, wanted: SEGMENT_3 },
  {
    case: 'a plain segment too long',
    files: { [SEGMENT_3]: Buffer.concat([segment(3), Buffer.alloc(8192)]) },
    wanted: SEGMENT_3,
  },
  { case: 'a segment stored under another name', files: { [SEGMENT_3]: segment(4) }, wanted: SEGMENT_3 },
  { case: 'no WAL at all', files: { [SEGMENT_3]: Buffer.alloc(SEGMENT_SIZE, 1) }, wanted: SEGMENT_3 },
  {
    case: 'a truncated .gz',
    files: { [`${SEGMENT_3}.gz`]: gzip(segment(3)).subarray(0, -100) },
    wanted: SEGMENT_3,
  },
  {
    case: 'a damaged .lz4',
    files: { [`${SEGMENT_3}.lz4`]: damaged(compressFrameSync(segment(3))) },
    wanted: SEGMENT_3,
  },
];

describe('an archive in s3rver reads as the same directory does', () => {
  compareWithDirectory();
});

const realUrl = process.env.WAL_TEST_S3_URL;
describe.skipIf(!realUrl)(
  'an archive in a real store (WAL_TEST_S3_URL and AWS credentials) reads as the same directory does',
  () => {
    let saved: typeof store;
    beforeAll(() => {
      saved = store;
      uploaded.length = 0;
      store = {
        base: `${realUrl?.replace(/\/$/, '')}/wal-test-${process.pid}-${Date.now()}`,
        env: process.env,
      };
    });
    afterAll(async () => {
      for (const { url, names } of uploaded.splice(0)) {
        const bucket = openS3Store(url, { env: store.env });
        for (const name of names) await bucket.delete(name);
        bucket.close();
      }
      store = saved;
    });
    compareWithDirectory();
  },
);

function compareWithDirectory(): void {
  it.each(CASES)('$case', async ({ files, wanted, partial }) => {
    const { directory, url } = await archiveOf(files);
    const fromDirectory = await restoreOutcome(directory, wanted, partial);
    const fromBucket = await restoreOutcome(url, wanted, partial);
    expect(fromBucket).toEqual(fromDirectory);
  });

  it('restores a .zst segment as the directory does, on a Node.js with zstd', async (context) => {
    const compress = (zlib as unknown as Record<string, unknown>).zstdCompressSync as
      | ((data: Buffer) => Buffer)
      | undefined;
    if (compress === undefined) context.skip();
    const { directory, url } = await archiveOf({ [`${SEGMENT_3}.zst`]: compress!(segment(3)) });
    const fromBucket = await restoreOutcome(url, SEGMENT_3);
    expect(fromBucket).toEqual(await restoreOutcome(directory, SEGMENT_3));
    expect(fromBucket).toMatchObject({ status: 'restored', bytes: SEGMENT_SIZE });
  });

  it('lists the same entries, with their stored sizes', async () => {
    const { directory, url } = await archiveOf({
      [name(4)]: segment(4),
      '00000002.history': '1\t0/3000000\tno recovery target specified\n',
      [`${name(5)}.gz.partial`]: unfinishedGzip(segment(5, 8192)),
      'notes.txt': 'not WAL',
    });
    const fromBucket = await listArchive(await open(url));
    const withoutSizes = fromBucket.map(({ size: _size, ...entry }) => entry);
    expect(withoutSizes).toEqual((await listArchive(directory)).map(({ size: _size, ...entry }) => entry));
    expect(fromBucket.find((entry) => entry.name === name(4))?.size).toBe(SEGMENT_SIZE);
  });

  it("reads a plain segment's first page header with a range read, a compressed one by decoding its start", async () => {
    const { url } = await archiveOf({ [SEGMENT_3]: segment(3), [`${name(4)}.gz`]: gzip(segment(4)) });
    const source = await open(url);
    try {
      for (const wanted of [SEGMENT_3, name(4)]) {
        const file = await findArchiveFile(source, wanted);
        const number = Number.parseInt(wanted.slice(16), 16);
        expect((await readArchiveFileHead(file!, 40)).equals(segment(number, 40))).toBe(true);
      }
      expect(await source.readRange(SEGMENT_3, SEGMENT_SIZE - 10, SEGMENT_SIZE + 100)).toHaveLength(10);
    } finally {
      await source.close();
    }
  });
}

describe('an object store that cannot be read is an error, never "not found"', () => {
  it('a bucket that does not exist: every lookup fails, for segments and history files alike', async () => {
    for (const wanted of [SEGMENT_3, '00000002.history']) {
      const outcome = await restoreOutcome('s3://no-such-bucket/archive', wanted);
      expect(outcome).toEqual({ error: 'WAL_ERR_ARCHIVE_UNREADABLE', left: [] });
    }
    const error = await findArchiveFile(await open('s3://no-such-bucket/archive'), SEGMENT_3).catch(
      (caught: unknown) => caught,
    );
    expect((error as Error).message).toMatch(/could not list the archive "s3:\/\/no-such-bucket\/archive"/);
    expect((error as Error).message).not.toContain(s3.env.AWS_SECRET_ACCESS_KEY);
  });

  it('a store that is down: WAL_ERR_ARCHIVE_UNREADABLE naming the URL, after the store retried', async () => {
    const { url } = await archiveOf({ [SEGMENT_3]: segment(3) });
    const down = await openArchive(url, {
      objectStore: {
        env: { ...s3.env, AWS_ENDPOINT_URL: 'http://127.0.0.1:9' },
        retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
      },
    });
    const error = await findArchiveFile(down, SEGMENT_3).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'WAL_ERR_ARCHIVE_UNREADABLE', retryable: true });
    expect((error as Error).message).toContain(`"${url}/${SEGMENT_3}"`);
  });

  it('an s3:// URL that is not a bucket and prefix: WAL_ERR_ARCHIVE_INVALID_LOCATION', async () => {
    for (const location of ['s3://', 's3://Upper/archive', 's3://bucket/a//b']) {
      await expect(open(location)).rejects.toMatchObject({ code: 'WAL_ERR_ARCHIVE_INVALID_LOCATION' });
    }
  });
});

describe('runPrefetcher from an object store', () => {
  it('fetches the next segments, several at once, into the spool, bounded by its count', async () => {
    const files: Record<string, Buffer> = {};
    for (let number = 3; number <= 9; number += 1) files[`${name(number)}.gz`] = gzip(segment(number));
    const { url } = await archiveOf(files);
    const spool = join(scratch, 'spool');
    const archive = await open(url);
    await runPrefetcher({
      archive,
      spool,
      after: SEGMENT_3,
      segmentSize: SEGMENT_SIZE,
      count: 3,
      idleMs: 100,
    });
    await archive.close();
    const spooled = (await readdir(spool)).sort();
    expect(spooled).toEqual([name(4), name(5), name(6)]);
    for (const file of spooled) {
      expect((await readFile(join(spool, file))).equals(segment(Number.parseInt(file.slice(16), 16)))).toBe(
        true,
      );
    }
  });
});
