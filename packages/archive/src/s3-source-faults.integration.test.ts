import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ScriptedS3, startScriptedS3 } from '@wal/fake-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openArchive, type RestoreResult, restoreFromArchive, runPrefetcher } from './index.js';
import { SEGMENT_SIZE, segment } from './testing/index.js';

/**
 * The object-store source against the scripted S3 endpoint, for what s3rver cannot do: 503
 * SlowDown, a reset or a stall in the middle of an object, a body damaged in transit, an outage.
 * It also shows which requests a restore makes: a missing file is answered without retries, and
 * a file that is not the segment asked for is refused after its first range.
 */

const SEGMENT_3 = '000000010000000000000003';
const URL = 's3://wal-archive/db';

/** Stored as `@wal/s3` stores it: with its MD5 in the metadata. */
function seed(s3: ScriptedS3, name: string, body: Buffer): void {
  s3.seed(`db/${name}`, body, { metadata: { 'wal-md5': createHash('md5').update(body).digest('hex') } });
}

let s3: ScriptedS3;
let target: string;

beforeAll(async () => {
  s3 = await startScriptedS3();
});
afterAll(async () => {
  await s3?.stop();
});
beforeEach(async () => {
  target = await mkdtemp(join(tmpdir(), 'wal-s3-faults-'));
  s3.objects.clear();
  s3.clearFaults();
  s3.requests.length = 0;
});
afterEach(() => rm(target, { recursive: true, force: true }));

async function restore(wanted = SEGMENT_3, requestTimeoutMs = 30_000): Promise<RestoreResult> {
  const archive = await openArchive(URL, {
    objectStore: { env: s3.env, retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 }, requestTimeoutMs },
  });
  try {
    return await restoreFromArchive({ archive, wanted, target: join(target, 'RECOVERYXLOG'), sync: false });
  } finally {
    await archive.close();
  }
}

const restored = () => readFile(join(target, 'RECOVERYXLOG'));
const requests = () => s3.requests.map((request) => `${request.operation} ${request.key}`);

describe('faults the store retries by itself', () => {
  it('503 SlowDown, twice, on the object: restored', async () => {
    seed(s3, SEGMENT_3, segment(3));
    s3.fail({ operation: 'GET', times: 2, fault: { kind: 'error', status: 503, code: 'SlowDown' } });
    expect(await restore()).toMatchObject({ status: 'restored', bytes: SEGMENT_SIZE });
    expect((await restored()).equals(segment(3))).toBe(true);
    expect(s3.pendingFaults).toBe(0);
  });

  it('a reset in the middle of a range: that range is read again, not the object', async () => {
    seed(s3, SEGMENT_3, segment(3));
    s3.fail({ operation: 'GET', fault: { kind: 'reset', afterBytes: 10_000 } });
    expect(await restore()).toMatchObject({ status: 'restored', bytes: SEGMENT_SIZE });
    expect((await restored()).equals(segment(3))).toBe(true);
    const ranges = s3.requests.filter((request) => request.operation === 'GET').map((r) => r.headers.range);
    // The first range (the page header's) twice, then the rest.
    expect(ranges).toEqual(['bytes=0-65535', 'bytes=0-65535', `bytes=65536-${SEGMENT_SIZE - 1}`]);
  });

  it('a stall in the middle of a range: timed out and read again', async () => {
    seed(s3, SEGMENT_3, segment(3));
    s3.fail({ operation: 'GET', fault: { kind: 'stall', afterBytes: 1000 } });
    expect(await restore(SEGMENT_3, 500)).toMatchObject({ status: 'restored', bytes: SEGMENT_SIZE });
    expect((await restored()).equals(segment(3))).toBe(true);
  });
});

describe('faults that reach the caller as WAL_ERR_ARCHIVE_UNREADABLE', () => {
  it('a body damaged in transit: its MD5 does not match, and nothing is written', async () => {
    seed(s3, SEGMENT_3, segment(3));
    s3.fail({ operation: 'GET', key: /03$/, times: 2, fault: { kind: 'corrupt' } });
    const error = await restore().catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'WAL_ERR_ARCHIVE_UNREADABLE' });
    expect((error as Error).message).toMatch(/do not match the MD5 stored with it/);
    expect(await readdir(target)).toEqual([]);
  });

  it('an outage (connections refused), after the store retried', async () => {
    seed(s3, SEGMENT_3, segment(3));
    await s3.down('refuse');
    try {
      await expect(restore()).rejects.toMatchObject({ code: 'WAL_ERR_ARCHIVE_UNREADABLE' });
    } finally {
      await s3.up();
    }
    expect(await restore()).toMatchObject({ status: 'restored' });
  });

  it('503 on every try of the lookup', async () => {
    seed(s3, SEGMENT_3, segment(3));
    s3.fail({
      operation: 'HEAD',
      times: Number.POSITIVE_INFINITY,
      fault: { kind: 'error', status: 503, code: 'SlowDown' },
    });
    await expect(restore()).rejects.toMatchObject({ code: 'WAL_ERR_ARCHIVE_UNREADABLE' });
  });
});

describe('the requests a restore makes', () => {
  it('a missing segment: one lookup per form, then one listing, and no retry', async () => {
    seed(s3, '000000010000000000000002', segment(2));
    expect(await restore()).toEqual({ status: 'not-found' });
    expect(requests()).toEqual([
      ...['', '.gz', '.lz4', '.zst', '.partial', '.gz.partial', '.lz4.partial', '.zst.partial'].map(
        (suffix) => `HEAD db/${SEGMENT_3}${suffix}`,
      ),
      'LIST ',
    ]);
  });

  it('an object that is not the segment asked for: refused after its first range', async () => {
    seed(s3, SEGMENT_3, segment(4));
    await expect(restore()).rejects.toMatchObject({ code: 'WAL_ERR_ARCHIVE_CORRUPT' });
    expect(requests().filter((request) => request.startsWith('GET'))).toHaveLength(1);
    expect(s3.requests.find((request) => request.operation === 'GET')?.headers.range).toBe('bytes=0-65535');
  });
});

describe('runPrefetcher from an object store', () => {
  it('fetches segments in parallel: the next ones while one is stalled', async () => {
    const names = [4, 5, 6, 7].map((number) => `00000001000000000000000${number}`);
    for (const [index, name] of names.entries()) seed(s3, name, segment(index + 4));
    s3.fail({ operation: 'GET', key: /04$/, fault: { kind: 'stall' } });
    const archive = await openArchive(URL, { objectStore: { env: s3.env, requestTimeoutMs: 120_000 } });
    const spool = join(target, 'spool');
    const prefetching = runPrefetcher({
      archive,
      spool,
      after: SEGMENT_3,
      segmentSize: SEGMENT_SIZE,
      count: 3,
    });
    // A prefetcher reading one segment at a time could not ask for segment 6 before 4 is read.
    while (!requests().includes(`GET db/${names[2]}`)) await sleep(20);
    expect(requests()).not.toContain(`GET db/${names[3]}`);
    // Closing drops the stalled connection; the store reads segment 4 again, and the spool is full.
    await archive.close();
    await prefetching;
    expect((await readdir(spool)).sort()).toEqual(names.slice(0, 3));
    expect(requests()).not.toContain(`GET db/${names[3]}`);
  });
});
