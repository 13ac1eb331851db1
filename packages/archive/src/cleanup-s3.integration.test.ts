import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningS3rver, type ScriptedS3, startS3rver, startScriptedS3 } from '@wal/fake-s3';
import { openS3Store } from '@wal/s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ArchiveError,
  type CleanupEvent,
  type CleanupOptions,
  cleanupArchive,
  directorySource,
  openArchive,
} from './index.js';

/**
 * `cleanupArchive` on an `s3://` archive: against s3rver (a real S3 implementation) it must make
 * exactly the directory's decisions, in the same order, with `s3://BUCKET/PREFIX/NAME` as the path;
 * against the scripted endpoint, a store that fails stops it as a directory that fails does.
 */

const BUCKET = 'wal-archive';
const KEPT = '000000010000000000000010';
const NAMES = [
  '00000002000000000000000F.lz4.partial',
  '000000010000000000000001.gz',
  '00000001000000000000000E.zst',
  '00000001000000000000000E.partial.gz',
  '000000010000000000000010',
  '000000020000000000000011.gz.partial',
  '00000002.history',
  '000000010000000000000001.00000028.backup',
  'README',
];
const QUICK_RETRIES = { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 };

let scratch: string;
beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'wal-cleanup-s3-'));
});
afterEach(() => rm(scratch, { recursive: true, force: true }));

async function events(options: CleanupOptions): Promise<CleanupEvent[]> {
  const seen: CleanupEvent[] = [];
  for await (const event of cleanupArchive(options)) seen.push(event);
  return seen;
}

async function failure(options: CleanupOptions): Promise<ArchiveError> {
  const error = await events(options).catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(ArchiveError);
  return error as ArchiveError;
}

describe('cleanupArchive on s3rver, beside a directory', () => {
  let s3: RunningS3rver;
  let prefixes = 0;
  beforeAll(async () => {
    s3 = await startS3rver({ buckets: [BUCKET] });
  });
  afterAll(async () => {
    await s3?.stop();
  });

  /** NAMES in a new directory and under a new prefix (with an object one level down, too). */
  async function archives(): Promise<{ directory: string; url: string }> {
    const prefix = `case-${++prefixes}`;
    const directory = join(scratch, prefix);
    await mkdir(join(directory, 'archive_status'), { recursive: true });
    const url = `s3://${BUCKET}/${prefix}`;
    const store = openS3Store(url, { env: s3.env });
    const below = openS3Store(`${url}/archive_status`, { env: s3.env });
    try {
      for (const name of NAMES) {
        await writeFile(join(directory, name), name);
        await store.put(name, Buffer.from(name));
      }
      await below.put('000000010000000000000001.done', Buffer.alloc(0));
    } finally {
      store.close();
      below.close();
    }
    return { directory, url };
  }

  async function objects(url: string): Promise<string[]> {
    const store = openS3Store(url, { env: s3.env });
    try {
      const names: string[] = [];
      for await (const object of store.list()) names.push(object.name);
      return names.sort();
    } finally {
      store.close();
    }
  }

  const options = (archive: string, more: Partial<CleanupOptions> = {}): CleanupOptions => ({
    archive,
    oldestKept: KEPT,
    objectStore: { env: s3.env, retry: QUICK_RETRIES },
    ...more,
  });

  it.each([{ dryRun: true }, { dryRun: false }, { dryRun: false, extension: '.gz' }])(
    'makes the directory decisions in the same order, %o',
    async (more) => {
      const { directory, url } = await archives();
      const fromDirectory = await events(options(directory, more));
      const fromBucket = await events(options(url, more));
      const asBucket = (event: CleanupEvent) => ({ ...event, path: event.path.replace(directory, url) });
      expect(fromBucket).toEqual(fromDirectory.map(asBucket));
      expect(fromBucket[0]).toEqual({ kind: 'keeping', path: `${url}/${KEPT}` });
      expect(fromBucket.length).toBeGreaterThan(2);
      const left = (await readdir(directory)).filter((name) => name !== 'archive_status').sort();
      expect(await objects(url)).toEqual(left);
      expect(left.length).toBe(more.dryRun ? NAMES.length : NAMES.length - (fromBucket.length - 1));
      // What is below the prefix is no file of the archive: it stays.
      expect(await objects(`${url}/archive_status`)).toEqual(['000000010000000000000001.done']);
    },
  );

  it('prints an s3:// URL with a trailing slash or upper-case scheme as the canonical URL', async () => {
    const { url } = await archives();
    const [keeping] = await events(options(`S3${url.slice(2)}/`, { dryRun: true }));
    expect(keeping).toEqual({ kind: 'keeping', path: `${url}/${KEPT}` });
  });

  it('an empty prefix is an empty archive: nothing to do', async () => {
    expect(await events(options(`s3://${BUCKET}/nothing-here`))).toEqual([
      { kind: 'keeping', path: `s3://${BUCKET}/nothing-here/${KEPT}` },
    ]);
  });

  it('a missing bucket cannot be listed: WAL_ERR_ARCHIVE_UNREADABLE, naming it', async () => {
    const error = await failure(options('s3://no-such-bucket/archive'));
    expect(error.code).toBe('WAL_ERR_ARCHIVE_UNREADABLE');
    expect(error.message).toMatch(
      /^could not list the archive "s3:\/\/no-such-bucket\/archive": .*NoSuchBucket/,
    );
  });

  it('uses a source it is given, and leaves it open', async () => {
    const { url } = await archives();
    const source = await openArchive(url, { objectStore: { env: s3.env } });
    try {
      await events({ archive: source, oldestKept: KEPT });
      expect(await source.list()).toHaveLength(NAMES.length - 3);
    } finally {
      await source.close();
    }
  });
});

describe('cleanupArchive with a directory source', () => {
  it('removes through the source; a file already gone is no error, one that cannot go is', async () => {
    await writeFile(join(scratch, '000000010000000000000001'), '');
    await mkdir(join(scratch, '000000010000000000000002'));
    const source = directorySource(scratch);
    await source.remove('000000010000000000000009');
    const error = await failure({ archive: source, oldestKept: KEPT });
    expect(error.code).toBe('WAL_ERR_ARCHIVE_REMOVE');
    expect(error.message).toMatch(/^could not remove file ".*\/000000010000000000000002": Is a directory$/);
    expect(await readdir(scratch)).toEqual(['000000010000000000000002']);
  });
});

describe('cleanupArchive and a failing store (scripted endpoint)', () => {
  let s3: ScriptedS3;
  const url = `s3://${BUCKET}/db`;
  const segments = ['000000010000000000000001', '000000010000000000000002', '000000010000000000000003'];
  const left = () => [...s3.objects.keys()].sort();
  const requests = () => s3.requests.map((request) => `${request.operation} ${request.key}`);
  const options = (more: Partial<CleanupOptions> = {}): CleanupOptions => ({
    archive: url,
    oldestKept: KEPT,
    objectStore: { env: s3.env, retry: QUICK_RETRIES },
    ...more,
  });

  beforeAll(async () => {
    s3 = await startScriptedS3();
  });
  afterAll(async () => {
    await s3?.stop();
  });
  beforeEach(() => {
    s3.objects.clear();
    s3.clearFaults();
    s3.requests.length = 0;
    for (const name of [...segments, KEPT, '00000002.history']) s3.seed(`db/${name}`, Buffer.from(name));
  });

  it('an outage: WAL_ERR_ARCHIVE_UNREADABLE after the retries, nothing removed, no secret', async () => {
    await s3.down('refuse');
    try {
      const error = await failure(options());
      expect(error.code).toBe('WAL_ERR_ARCHIVE_UNREADABLE');
      expect(error.message).toMatch(/^could not list the archive "s3:\/\/wal-archive\/db": /);
      expect(error.message).not.toContain(s3.env.AWS_SECRET_ACCESS_KEY);
    } finally {
      await s3.up();
    }
    expect(left()).toHaveLength(5);
  });

  it('a DELETE refused mid-way: WAL_ERR_ARCHIVE_REMOVE there; older ones gone, later ones kept', async () => {
    s3.fail({
      operation: 'DELETE',
      key: `db/${segments[1]}`,
      fault: { kind: 'error', status: 403, code: 'AccessDenied', message: 'Access Denied' },
    });
    const seen: CleanupEvent[] = [];
    const error = await (async () => {
      for await (const event of cleanupArchive(options())) seen.push(event);
    })().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ArchiveError);
    expect((error as ArchiveError).code).toBe('WAL_ERR_ARCHIVE_REMOVE');
    expect((error as ArchiveError).message).toMatch(
      /^could not remove file "s3:\/\/wal-archive\/db\/000000010000000000000002": DELETE .*AccessDenied \(HTTP 403\): Access Denied/,
    );
    expect(seen.map((event) => event.path)).toEqual([
      `${url}/${KEPT}`,
      `${url}/${segments[0]}`,
      `${url}/${segments[1]}`,
    ]);
    expect(left()).toEqual(
      [`db/${segments[1]}`, `db/${segments[2]}`, `db/${KEPT}`, 'db/00000002.history'].sort(),
    );
    expect(requests().filter((request) => request.startsWith('DELETE'))).toEqual([
      `DELETE db/${segments[0]}`,
      `DELETE db/${segments[1]}`,
    ]);
  });

  it('503 SlowDown on a DELETE is retried by the store: done', async () => {
    s3.fail({ operation: 'DELETE', times: 1, fault: { kind: 'error', status: 503, code: 'SlowDown' } });
    expect(await events(options())).toHaveLength(4);
    expect(left()).toEqual([`db/${KEPT}`, 'db/00000002.history']);
    expect(s3.pendingFaults).toBe(0);
  });

  it('access denied on the listing: WAL_ERR_ARCHIVE_UNREADABLE, nothing removed', async () => {
    const error = await failure(options({ objectStore: { env: { ...s3.env, AWS_ACCESS_KEY_ID: 'OTHER' } } }));
    expect(error.code).toBe('WAL_ERR_ARCHIVE_UNREADABLE');
    expect(error.message).toMatch(/InvalidAccessKeyId \(HTTP 403\)/);
    expect(left()).toHaveLength(5);
  });

  it('a malformed URL or a bad name: refused before any request, the URL first', async () => {
    const location = await failure(options({ archive: 's3://Not_A_Bucket/x', oldestKept: 'bad' }));
    expect(location.code).toBe('WAL_ERR_ARCHIVE_INVALID_LOCATION');
    await s3.down('refuse');
    try {
      expect((await failure(options({ oldestKept: 'bad' }))).code).toBe('WAL_ERR_ARCHIVE_INVALID_NAME');
    } finally {
      await s3.up();
    }
    expect(s3.requests).toEqual([]);
  });
});
