import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { type ScriptedS3, startScriptedS3 } from '@wal/fake-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openS3Store, type S3Store, type S3StoreOptions } from './index.js';
import { caught, md5Hex } from './test-support.js';

// Small delays keep the suite short; the stall timeout only bounds how long a stalled request waits.
const FAST: S3StoreOptions = { retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 }, requestTimeoutMs: 400 };
const SEGMENT = '000000010000000000000001';
const KEY = `cluster-a/${SEGMENT}`;

let server: ScriptedS3;
let store: S3Store;

beforeEach(async () => {
  server = await startScriptedS3({ buckets: ['wal-archive'] });
  store = openS3Store('s3://wal-archive/cluster-a', { ...FAST, env: server.env });
});
afterEach(async () => {
  store.close();
  await server.stop();
});

function puts(): number {
  return server.requests.filter((request) => request.operation === 'PUT').length;
}

describe('every PUT carries a checksum the store verifies', () => {
  it('sends Content-MD5 and the MD5 in metadata', async () => {
    const body = randomBytes(4096);
    await store.put(SEGMENT, body);
    const [request] = server.requests;
    expect(request?.headers['content-md5']).toBe(createHash('md5').update(body).digest('base64'));
    expect(server.objects.get(KEY)?.metadata['wal-md5']).toBe(md5Hex(body));
    expect(server.objects.get(KEY)?.body.equals(body)).toBe(true);
  });

  it('sends a damaged body again after BadDigest, and stores the right bytes', async () => {
    server.fail({ operation: 'PUT', fault: { kind: 'corrupt' } });
    const body = randomBytes(100_000);
    expect(await store.put(SEGMENT, body)).toBe('created');
    expect(puts()).toBe(2);
    expect(server.objects.get(KEY)?.body.equals(body)).toBe(true);
  });

  it('gives up after the tries with WAL_ERR_S3_CHECKSUM and the store message', async () => {
    server.fail({ operation: 'PUT', times: Number.POSITIVE_INFINITY, fault: { kind: 'corrupt' } });
    const error = await caught(store.put(SEGMENT, randomBytes(1000)));
    expect(error).toMatchObject({ code: 'WAL_ERR_S3_CHECKSUM', status: 400, storeCode: 'BadDigest' });
    expect(error.message).toContain('The Content-MD5 you specified did not match what we received');
    expect(error.message).toContain('(4 attempts)');
    expect(puts()).toBe(4);
    expect(server.objects.has(KEY)).toBe(false);
  });
});

describe('conditional PUT (If-None-Match: *)', () => {
  it('sends If-None-Match: * and creates a new object', async () => {
    expect(await store.put(SEGMENT, Buffer.from('new'), { ifNoneMatch: true })).toBe('created');
    expect(server.requests[0]?.headers['if-none-match']).toBe('*');
  });

  it('answers identical for the same bytes already there, by our MD5 metadata', async () => {
    const body = randomBytes(5000);
    server.seed(KEY, body, {
      metadata: { 'wal-md5': md5Hex(body) },
      etag: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-3',
    });
    expect(await store.put(SEGMENT, body, { ifNoneMatch: true })).toBe('identical');
  });

  it('answers identical by the ETag when the object has no MD5 metadata', async () => {
    const body = randomBytes(5000);
    server.seed(KEY, body);
    expect(await store.put(SEGMENT, body, { ifNoneMatch: true })).toBe('identical');
  });

  it('reads the object back when its ETag is a multipart one and it has no metadata', async () => {
    const body = randomBytes(5000);
    server.seed(KEY, body, { etag: '0123456789abcdef0123456789abcdef-2' });
    expect(await store.put(SEGMENT, body, { ifNoneMatch: true })).toBe('identical');
    expect(server.requests.map((request) => request.operation)).toEqual(['PUT', 'HEAD', 'GET']);
  });

  it('reports a different object as a conflict and never overwrites it', async () => {
    const theirs = randomBytes(5000);
    server.seed(KEY, theirs, { metadata: { 'wal-md5': md5Hex(theirs) } });
    const ours = randomBytes(5000);
    const error = await caught(store.put(SEGMENT, ours, { ifNoneMatch: true }));
    expect(error.code).toBe('WAL_ERR_S3_CONFLICT');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(
      `s3://wal-archive/cluster-a/${SEGMENT} already exists with other content`,
    );
    expect(error.message).toContain(md5Hex(ours));
    expect(server.objects.get(KEY)?.body.equals(theirs)).toBe(true);
  });

  it('reports a conflict for a different size even with no checksum to compare', async () => {
    server.seed(KEY, Buffer.from('short'), { etag: '0123456789abcdef0123456789abcdef-2' });
    const error = await caught(store.put(SEGMENT, Buffer.from('longer body'), { ifNoneMatch: true }));
    expect(error.code).toBe('WAL_ERR_S3_CONFLICT');
    expect(server.objects.get(KEY)?.body.toString()).toBe('short');
  });

  it('tries again when the object behind a 412 is gone', async () => {
    server.fail({ operation: 'PUT', fault: { kind: 'error', status: 412, code: 'PreconditionFailed' } });
    expect(await store.put(SEGMENT, Buffer.from('body'), { ifNoneMatch: true })).toBe('created');
    expect(server.requests.map((request) => request.operation)).toEqual(['PUT', 'HEAD', 'PUT']);
  });

  it('answers identical when a retried PUT finds its own first try stored', async () => {
    // The first try is stored, but its answer is lost: the connection breaks before it arrives.
    const body = randomBytes(2000);
    server.fail({ operation: 'PUT', fault: { kind: 'drop-answer' } });
    expect(await store.put(SEGMENT, body, { ifNoneMatch: true })).toBe('identical');
    expect(server.requests.map((request) => request.operation)).toEqual(['PUT', 'PUT', 'HEAD']);
    expect(server.objects.get(KEY)?.body.equals(body)).toBe(true);
  });
});

describe('retries', () => {
  it('retries 503 SlowDown, then succeeds', async () => {
    server.fail({
      operation: 'PUT',
      times: 2,
      fault: { kind: 'error', status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' },
    });
    expect(await store.put(SEGMENT, Buffer.from('x'))).toBe('created');
    expect(puts()).toBe(3);
  });

  it('retries 429 and 500 on reads', async () => {
    await store.put(SEGMENT, Buffer.from('segment bytes'));
    server.fail({ operation: 'GET', fault: { kind: 'error', status: 429, code: 'TooManyRequests' } });
    server.fail({ operation: 'GET', fault: { kind: 'error', status: 500, code: 'InternalError' } });
    server.fail({ operation: 'HEAD', fault: { kind: 'error', status: 503, code: 'ServiceUnavailable' } });
    server.fail({ operation: 'LIST', fault: { kind: 'error', status: 503, code: 'SlowDown' } });
    expect((await store.get(SEGMENT)).toString()).toBe('segment bytes');
    expect((await store.head(SEGMENT))?.size).toBe(13);
    const listed: string[] = [];
    for await (const object of store.list()) listed.push(object.name);
    expect(listed).toEqual([SEGMENT]);
    expect(server.pendingFaults).toBe(0);
  });

  it.each([
    {
      answer: '503 SlowDown on every try',
      times: 10,
      status: 503,
      storeCode: 'SlowDown',
      message: 'Please reduce your request rate.',
      code: 'WAL_ERR_S3_UNAVAILABLE',
      retryable: true,
      puts: 4,
    },
    {
      answer: '403 AccessDenied',
      times: 1,
      status: 403,
      storeCode: 'AccessDenied',
      message: 'Access Denied',
      code: 'WAL_ERR_S3_ACCESS_DENIED',
      retryable: false,
      puts: 1,
    },
    {
      answer: '400 EntityTooLarge',
      times: 1,
      status: 400,
      storeCode: 'EntityTooLarge',
      message: 'Your proposed upload exceeds the maximum allowed size',
      code: 'WAL_ERR_S3_REQUEST',
      retryable: false,
      puts: 1,
    },
  ])('$answer ends with $code after $puts tries, with the store code and message', async (answer) => {
    const { times, status, storeCode, message } = answer;
    server.fail({ operation: 'PUT', times, fault: { kind: 'error', status, code: storeCode, message } });
    const error = await caught(store.put(SEGMENT, Buffer.from('x')));
    expect(error).toMatchObject({ code: answer.code, status, storeCode, retryable: answer.retryable });
    expect(error.message).toContain(`${storeCode} (HTTP ${status}): ${message}`);
    expect(puts()).toBe(answer.puts);
  });

  it('names a missing bucket without retrying', async () => {
    const other = openS3Store('s3://no-such-bucket', { ...FAST, env: server.env });
    try {
      // (A HEAD cannot tell: its 404 has no body, so it answers undefined, as for a missing object.)
      const error = await caught(other.get(SEGMENT));
      expect(error).toMatchObject({ code: 'WAL_ERR_S3_NO_SUCH_BUCKET', status: 404 });
      expect(server.requests).toHaveLength(1);
    } finally {
      other.close();
    }
  });

  it('retries a PUT whose connection is reset mid-body', async () => {
    server.fail({ operation: 'PUT', fault: { kind: 'reset', afterBytes: 64 * 1024 } });
    const body = randomBytes(1024 * 1024);
    expect(await store.put(SEGMENT, body)).toBe('created');
    expect(puts()).toBe(2);
    expect(server.objects.get(KEY)?.body.equals(body)).toBe(true);
  });

  it('retries putFile with a fresh read of the file after a reset mid-body', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'wal-s3-file-'));
    try {
      const body = randomBytes(3 * 1024 * 1024);
      await writeFile(join(directory, 'segment'), body);
      server.fail({ operation: 'PUT', fault: { kind: 'reset', afterBytes: 1024 * 1024 } });
      server.fail({ operation: 'PUT', fault: { kind: 'error', status: 503, code: 'SlowDown' } });
      expect(await store.putFile(SEGMENT, join(directory, 'segment'), { ifNoneMatch: true })).toBe('created');
      expect(puts()).toBe(3);
      expect(server.requests[2]?.headers['content-md5']).toBe(
        createHash('md5').update(body).digest('base64'),
      );
      expect(server.objects.get(KEY)?.body.equals(body)).toBe(true);
      expect(await store.putFile(SEGMENT, join(directory, 'segment'), { ifNoneMatch: true })).toBe(
        'identical',
      );
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('retries a GET whose connection is reset mid-body, and returns every byte', async () => {
    const body = randomBytes(1024 * 1024);
    server.seed(KEY, body, { metadata: { 'wal-md5': md5Hex(body) } });
    server.fail({ operation: 'GET', fault: { kind: 'reset', afterBytes: 100_000 } });
    expect((await store.get(SEGMENT)).equals(body)).toBe(true);
    server.fail({ operation: 'GET', fault: { kind: 'reset', afterBytes: 10 } });
    expect((await store.get(SEGMENT, { start: 5, end: 50_000 })).equals(body.subarray(5, 50_000))).toBe(true);
  });

  it('reads a whole object again when its bytes do not match the stored MD5', async () => {
    const body = randomBytes(10_000);
    server.seed(KEY, body, { metadata: { 'wal-md5': md5Hex(body) } });
    server.fail({ operation: 'GET', fault: { kind: 'corrupt' } });
    expect((await store.get(SEGMENT)).equals(body)).toBe(true);
    server.fail({ operation: 'GET', times: 10, fault: { kind: 'corrupt' } });
    const error = await caught(store.get(SEGMENT));
    expect(error).toMatchObject({ code: 'WAL_ERR_S3_CHECKSUM', retryable: true });
  });

  it('ends a stalled request after requestTimeoutMs and retries it', async () => {
    const body = randomBytes(200_000);
    server.seed(KEY, body, { metadata: { 'wal-md5': md5Hex(body) } });
    server.fail({ operation: 'GET', fault: { kind: 'stall', afterBytes: 1000 } });
    server.fail({ operation: 'HEAD', fault: { kind: 'stall' } });
    server.fail({ operation: 'PUT', fault: { kind: 'stall', afterBytes: 10 } });
    expect((await store.get(SEGMENT)).equals(body)).toBe(true);
    expect((await store.head(SEGMENT))?.size).toBe(body.length);
    expect(await store.put('other', body)).toBe('created');
    expect(server.pendingFaults).toBe(0);
  });

  it('gives up on a store that keeps stalling with WAL_ERR_S3_UNAVAILABLE', async () => {
    server.fail({ operation: 'HEAD', times: 10, fault: { kind: 'stall' } });
    const error = await caught(store.head(SEGMENT));
    expect(error).toMatchObject({
      code: 'WAL_ERR_S3_UNAVAILABLE',
      storeCode: 'TimeoutError',
      retryable: true,
    });
  });

  it('rides out an outage of refused connections', async () => {
    const patient = openS3Store('s3://wal-archive/cluster-a', {
      env: server.env,
      retry: { attempts: 1000, baseDelayMs: 5, maxDelayMs: 20 },
    });
    try {
      await server.down('refuse');
      const put = patient.put(SEGMENT, Buffer.from('after the outage'));
      setTimeout(() => void server.up(), 300);
      expect(await put).toBe('created');
      expect(server.objects.get(KEY)?.body.toString()).toBe('after the outage');
    } finally {
      patient.close();
    }
  });

  it('rides out an outage of dropped connections, and reports one that lasts', async () => {
    await server.down('reset');
    const error = await caught(store.get(SEGMENT));
    expect(error).toMatchObject({ code: 'WAL_ERR_S3_UNAVAILABLE', retryable: true });
    expect(error.message).toContain('(4 attempts)');
    await server.up();
    await store.put(SEGMENT, Buffer.from('back'));
    expect((await store.get(SEGMENT)).toString()).toBe('back');
  });
});

describe('the abort signal', () => {
  it('ends a stalled request at once', async () => {
    server.fail({ operation: 'HEAD', fault: { kind: 'stall' } });
    const patient = openS3Store('s3://wal-archive/cluster-a', { env: server.env, requestTimeoutMs: 600_000 });
    const controller = new AbortController();
    try {
      const head = patient.head(SEGMENT, { signal: controller.signal });
      while (server.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      controller.abort();
      expect(await caught(head)).toMatchObject({ code: 'WAL_ERR_S3_ABORTED' });
    } finally {
      patient.close();
    }
  });

  it('ends the wait between tries', async () => {
    server.fail({ times: 10, fault: { kind: 'error', status: 503, code: 'SlowDown' } });
    const slow = openS3Store('s3://wal-archive/cluster-a', {
      env: server.env,
      retry: { attempts: 5, baseDelayMs: 600_000, maxDelayMs: 600_000 },
    });
    const controller = new AbortController();
    try {
      const put = slow.put(SEGMENT, Buffer.from('x'), { signal: controller.signal });
      while (puts() === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      controller.abort();
      expect(await caught(put)).toMatchObject({ code: 'WAL_ERR_S3_ABORTED' });
      expect(puts()).toBe(1);
    } finally {
      slow.close();
    }
  });

  it('refuses to start when already aborted', async () => {
    const error = await caught(store.get(SEGMENT, { signal: AbortSignal.abort() }));
    expect(error.code).toBe('WAL_ERR_S3_ABORTED');
    expect(server.requests).toHaveLength(0);
  });
});

describe('configuration', () => {
  async function withFiles(run: (directory: string) => Promise<void>): Promise<void> {
    const directory = await mkdtemp(join(tmpdir(), 'wal-s3-config-'));
    try {
      await run(directory);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }

  /** AWS_PROFILE `profile`, read from `credentials` and `config` in `directory`, against the scripted store. */
  function profileEnv(directory: string, profile: string): Record<string, string> {
    return {
      AWS_PROFILE: profile,
      AWS_SHARED_CREDENTIALS_FILE: join(directory, 'credentials'),
      AWS_CONFIG_FILE: join(directory, 'config'),
      AWS_ENDPOINT_URL: server.endpoint,
    };
  }

  it('takes the keys of AWS_PROFILE from the shared credentials file, and its region from the config file', async () => {
    await withFiles(async (directory) => {
      await writeFile(
        join(directory, 'credentials'),
        '[default]\naws_access_key_id = WRONG\naws_secret_access_key = x\n[archiver]\naws_access_key_id = SCRIPTED\naws_secret_access_key = from-the-file\n',
      );
      await writeFile(
        join(directory, 'config'),
        '[default]\nregion = us-west-2\n[profile archiver]\nregion = eu-west-3\n',
      );
      const env = profileEnv(directory, 'archiver');
      const profiled = openS3Store('s3://wal-archive/cluster-a', { ...FAST, env });
      try {
        expect(await profiled.put(SEGMENT, Buffer.from('x'))).toBe('created');
        expect(server.requests[0]?.headers.authorization).toMatch(
          /Credential=SCRIPTED\/\d{8}\/eu-west-3\/s3\//,
        );
      } finally {
        profiled.close();
      }
    });
  });

  const remoteCredentials = [
    'AWS_CONTAINER_CREDENTIALS_FULL_URI',
    'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
    'AWS_WEB_IDENTITY_TOKEN_FILE',
  ];
  it.skipIf(remoteCredentials.some((name) => process.env[name]))(
    'names missing credentials with WAL_ERR_S3_CREDENTIALS, sending nothing',
    async () => {
      // The instance metadata service would be the chain's last resort: no traffic leaves loopback.
      const saved = process.env.AWS_EC2_METADATA_DISABLED;
      process.env.AWS_EC2_METADATA_DISABLED = 'true';
      await withFiles(async (directory) => {
        const env = profileEnv(directory, 'nobody');
        const anonymous = openS3Store('s3://wal-archive', { ...FAST, env });
        try {
          const error = await caught(anonymous.head(SEGMENT));
          expect(error).toMatchObject({ code: 'WAL_ERR_S3_CREDENTIALS', retryable: false });
          expect(error.message).toContain('HEAD s3://wal-archive/000000010000000000000001 failed');
          expect(server.requests).toHaveLength(0);
        } finally {
          anonymous.close();
          if (saved === undefined) delete process.env.AWS_EC2_METADATA_DISABLED;
          else process.env.AWS_EC2_METADATA_DISABLED = saved;
        }
      });
    },
  );

  it('signs for us-east-1 when no region is configured, and AWS_REGION wins over the profile', async () => {
    await withFiles(async (directory) => {
      await writeFile(join(directory, 'config'), '[default]\nregion = us-west-2\n');
      const base = {
        AWS_ACCESS_KEY_ID: 'SCRIPTED',
        AWS_SECRET_ACCESS_KEY: 'x',
        AWS_ENDPOINT_URL: server.endpoint,
      };
      const bare = openS3Store('s3://wal-archive', {
        ...FAST,
        env: { ...base, AWS_CONFIG_FILE: join(directory, 'none') },
      });
      const regional = openS3Store('s3://wal-archive', {
        ...FAST,
        env: { ...base, AWS_CONFIG_FILE: join(directory, 'config'), AWS_REGION: 'ap-south-1' },
      });
      const profiled = openS3Store('s3://wal-archive', {
        ...FAST,
        env: { ...base, AWS_CONFIG_FILE: join(directory, 'config') },
      });
      try {
        await bare.head('a');
        await regional.head('a');
        await profiled.head('a');
        const regions = server.requests.map(
          (request) => /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(String(request.headers.authorization))?.[1],
        );
        expect(regions).toEqual(['us-east-1', 'ap-south-1', 'us-west-2']);
        expect(server.requests[0]?.headers.host).toBe(new URL(server.endpoint).host);
      } finally {
        bare.close();
        regional.close();
        profiled.close();
      }
    });
  });
});

describe('listing and secrets', () => {
  it('follows continuation tokens across pages', async () => {
    const paged = await startScriptedS3({ buckets: ['wal-archive'], listPageSize: 2 });
    const pagedStore = openS3Store('s3://wal-archive/cluster-a', { ...FAST, env: paged.env });
    try {
      const expected = [
        '00000002.history',
        SEGMENT,
        '000000010000000000000002',
        '000000010000000000000003.partial',
        'x.gz',
      ];
      for (const name of expected) paged.seed(`cluster-a/${name}`, Buffer.from(name));
      paged.seed('cluster-a/deeper/000000010000000000000009', Buffer.from('below'));
      paged.seed('cluster-ab/000000010000000000000009', Buffer.from('sibling'));
      const listed: string[] = [];
      for await (const object of pagedStore.list()) listed.push(object.name);
      expect(listed).toEqual([...expected].sort());
      expect(paged.requests.filter((request) => request.operation === 'LIST').length).toBeGreaterThanOrEqual(
        3,
      );
    } finally {
      pagedStore.close();
      await paged.stop();
    }
  });

  it('keeps the secret key and session token out of every error', async () => {
    const secret = `s3cr3t-${randomBytes(12).toString('hex')}`;
    const token = `t0ken-${randomBytes(12).toString('hex')}`;
    const env = { ...server.env, AWS_SECRET_ACCESS_KEY: secret, AWS_SESSION_TOKEN: token };
    const secretive = openS3Store('s3://wal-archive/cluster-a', { ...FAST, env });
    const wrongKey = openS3Store('s3://wal-archive/cluster-a', {
      ...FAST,
      env: { ...env, AWS_ACCESS_KEY_ID: 'NOPE' },
    });
    try {
      server.fail({
        fault: { kind: 'error', status: 400, code: 'InvalidToken', message: `bad token ${token}` },
      });
      const errors = [
        await caught(secretive.put(SEGMENT, Buffer.from('x'))),
        await caught(wrongKey.get(SEGMENT)),
        await caught(secretive.get('missing')),
      ];
      expect(errors[0]?.message).toContain('bad token ***');
      expect(errors[1]?.code).toBe('WAL_ERR_S3_ACCESS_DENIED');
      for (const error of errors) {
        const text = `${error.message} ${inspect(error, { depth: 10 })} ${JSON.stringify(error)}`;
        expect(text).not.toContain(secret);
        expect(text).not.toContain(token);
      }
    } finally {
      secretive.close();
      wrongKey.close();
    }
  });
});
