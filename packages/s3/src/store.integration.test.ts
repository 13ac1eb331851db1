import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { startS3rver } from '@wal/fake-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openS3Store, type S3Store } from './index.js';
import { caught, md5Hex } from './test-support.js';

interface Target {
  /** `s3://bucket/prefix` of a prefix the suite may fill and empty. */
  url: string;
  env: Record<string, string | undefined>;
  stop(): Promise<void>;
}

const SEGMENT = 16 * 1024 * 1024;

async function names(store: S3Store): Promise<string[]> {
  const found: string[] = [];
  for await (const object of store.list()) found.push(object.name);
  return found;
}

/**
 * The same checks against s3rver and, when configured, a real store. `conditional`: the store
 * enforces `If-None-Match: *` (s3rver ignores it).
 */
function storeSuite(start: () => Promise<Target>, conditional: boolean): void {
  let target: Target;
  let store: S3Store;

  beforeAll(async () => {
    target = await start();
    store = openS3Store(target.url, { env: target.env, retry: { attempts: 2, baseDelayMs: 10 } });
  });
  afterAll(async () => {
    if (store) {
      for await (const object of store.list()) await store.delete(object.name);
      store.close();
    }
    await target?.stop();
  });

  it('puts and gets the exact bytes of a 16 MiB segment', async () => {
    const body = randomBytes(SEGMENT);
    expect(await store.put('000000010000000000000001', body)).toBe('created');
    const info = await store.head('000000010000000000000001');
    const md5 = md5Hex(body);
    // (An ETag is the MD5 for a plain PUT unless the bucket encrypts with KMS: not checked here.)
    expect(info).toMatchObject({ name: '000000010000000000000001', size: SEGMENT, md5 });
    expect(info?.etag).toBeDefined();
    expect(info?.lastModified).toBeInstanceOf(Date);
    const back = await store.get('000000010000000000000001');
    expect(back.length).toBe(SEGMENT);
    expect(back.equals(body)).toBe(true);
  });

  it('streams a 40 MiB file up with putFile, and back byte for byte', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'wal-s3-file-'));
    try {
      const body = randomBytes(40 * 1024 * 1024);
      await writeFile(join(directory, 'segment'), body);
      expect(await store.putFile('000000010000000000000003', join(directory, 'segment'))).toBe('created');
      expect(await store.head('000000010000000000000003')).toMatchObject({
        size: body.length,
        md5: md5Hex(body),
      });
      expect((await store.get('000000010000000000000003')).equals(body)).toBe(true);
      const missing = await caught(store.putFile('x', join(directory, 'missing')));
      expect(missing.code).toBe('WAL_ERR_S3_FILE');
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('reads ranges: [start, end), to the end, clipped at the end, and nothing past it', async () => {
    const body = Buffer.from('0123456789abcdef');
    await store.put('range', body);
    expect((await store.get('range', { start: 4, end: 8 })).toString()).toBe('4567');
    expect((await store.get('range', { start: 10 })).toString()).toBe('abcdef');
    expect((await store.get('range', { end: 3 })).toString()).toBe('012');
    expect((await store.get('range', { start: 12, end: 100 })).toString()).toBe('cdef');
    expect((await store.get('range', { start: 16 })).length).toBe(0);
    expect((await store.get('range', { start: 5, end: 5 })).length).toBe(0);
  });

  it('streams an object', async () => {
    const body = randomBytes(300_000);
    await store.put('streamed', body);
    const chunks: Buffer[] = [];
    for await (const chunk of await store.getStream('streamed')) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(body)).toBe(true);
  });

  it('answers a missing object: head undefined, get WAL_ERR_S3_NOT_FOUND', async () => {
    expect(await store.head('000000010000000000000099')).toBeUndefined();
    const error = await caught(store.get('000000010000000000000099'));
    expect(error.code).toBe('WAL_ERR_S3_NOT_FOUND');
    expect(error.status).toBe(404);
    expect(error.retryable).toBe(false);
    expect(error.message).toContain('/000000010000000000000099');
    await expect(store.getStream('000000010000000000000099')).rejects.toMatchObject({
      code: 'WAL_ERR_S3_NOT_FOUND',
    });
  });

  it('lists the objects directly under the prefix by their file names, and deletes', async () => {
    const sibling = openS3Store(`${target.url}-sibling`, { env: target.env });
    const below = openS3Store(`${target.url}/below`, { env: target.env });
    try {
      await sibling.put('not-mine', Buffer.from('x'));
      await below.put('not-mine-either', Buffer.from('y'));
      await store.put('000000010000000000000002.partial', Buffer.from('partial'));
      await store.put('00000002.history', Buffer.from('1\t0/3000000\tno recovery target specified\n'));
      const listed = await names(store);
      expect(listed).toContain('000000010000000000000002.partial');
      expect(listed).toContain('00000002.history');
      expect(listed).not.toContain('not-mine');
      expect(listed.some((name) => name.includes('/') || name.includes('not-mine'))).toBe(false);
      const sizes = new Map<string, number>();
      for await (const object of store.list()) {
        sizes.set(object.name, object.size);
        expect(object.lastModified).toBeInstanceOf(Date);
      }
      expect(sizes.get('000000010000000000000002.partial')).toBe(7);
      await store.delete('000000010000000000000002.partial');
      await store.delete('000000010000000000000002.partial');
      expect(await names(store)).not.toContain('000000010000000000000002.partial');
    } finally {
      await sibling.delete('not-mine');
      await below.delete('not-mine-either');
      sibling.close();
      below.close();
    }
  });

  it.runIf(conditional)('never overwrites with ifNoneMatch: identical or a conflict', async () => {
    const body = randomBytes(70_000);
    expect(await store.put('000000010000000000000004', body, { ifNoneMatch: true })).toBe('created');
    expect(await store.put('000000010000000000000004', body, { ifNoneMatch: true })).toBe('identical');
    const error = await caught(
      store.put('000000010000000000000004', randomBytes(70_000), { ifNoneMatch: true }),
    );
    expect(error.code).toBe('WAL_ERR_S3_CONFLICT');
    expect((await store.get('000000010000000000000004')).equals(body)).toBe(true);
  });

  it('refuses a name with a "/" before sending anything', async () => {
    const error = await caught(store.put('a/b', Buffer.from('x')));
    expect(error.code).toBe('WAL_ERR_S3_INVALID_NAME');
  });

  it('never puts the secret key in an error, and names the store code', async () => {
    const secret = `wrong-secret-${randomBytes(8).toString('hex')}`;
    // s3rver checks only that the key id exists (it does not verify V4 signatures), so the key id is
    // wrong too; a real store answers SignatureDoesNotMatch or InvalidAccessKeyId.
    const env = {
      ...target.env,
      AWS_ACCESS_KEY_ID: 'AKIAWALTESTWRONGKEY0',
      AWS_SECRET_ACCESS_KEY: secret,
      AWS_SESSION_TOKEN: undefined,
    };
    const wrong = openS3Store(target.url, { env, retry: { attempts: 1 } });
    try {
      const error = await caught(wrong.put('secret-test', Buffer.from('x')));
      expect(error.code).toBe('WAL_ERR_S3_ACCESS_DENIED');
      expect(error.status).toBe(403);
      expect(['SignatureDoesNotMatch', 'InvalidAccessKeyId']).toContain(error.storeCode);
      expect(error.message).toContain(target.url);
      expect(inspect(error, { depth: 10 })).not.toContain(secret);
      expect(JSON.stringify(error)).not.toContain(secret);
      expect(String(error)).not.toContain(secret);
    } finally {
      wrong.close();
    }
  });
}

describe('@wal/s3 against s3rver', () => {
  storeSuite(async () => {
    const server = await startS3rver({ buckets: ['wal-archive', 'wal-other'] });
    return { url: 's3://wal-archive/cluster-a', env: server.env, stop: () => server.stop() };
  }, false);

  it('works with an empty prefix, and names a missing bucket', async () => {
    const server = await startS3rver({ buckets: ['wal-archive'] });
    const store = openS3Store('s3://wal-archive', { env: server.env });
    const missing = openS3Store('s3://no-such-bucket/x', { env: server.env, retry: { attempts: 1 } });
    try {
      expect(store.url).toBe('s3://wal-archive');
      expect(store.location).toEqual({ bucket: 'wal-archive', prefix: '' });
      await store.put('000000010000000000000001', Buffer.from('segment'));
      expect(await names(store)).toEqual(['000000010000000000000001']);
      expect((await store.get('000000010000000000000001')).toString()).toBe('segment');
      const error = await caught(missing.put('x', Buffer.from('x')));
      expect(error.code).toBe('WAL_ERR_S3_NO_SUCH_BUCKET');
      expect(error.storeCode).toBe('NoSuchBucket');
      expect(error.message).toContain('s3://no-such-bucket/x/x');
    } finally {
      store.close();
      missing.close();
      await server.stop();
    }
  });
});

const realUrl = process.env.WAL_TEST_S3_URL;
describe.skipIf(!realUrl)(
  '@wal/s3 against a real store (WAL_TEST_S3_URL and AWS credentials; skipped when unset)',
  () => {
    // Real stores enforce If-None-Match (AWS since 2024); set WAL_TEST_S3_NO_CONDITIONAL=1 for one that does not.
    storeSuite(
      async () => ({
        url: `${realUrl?.replace(/\/$/, '')}/wal-test-${randomBytes(6).toString('hex')}`,
        env: process.env,
        stop: async () => {},
      }),
      process.env.WAL_TEST_S3_NO_CONDITIONAL !== '1',
    );
  },
);
