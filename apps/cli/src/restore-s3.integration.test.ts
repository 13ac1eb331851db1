import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RunningS3rver, type ScriptedS3, startS3rver, startScriptedS3 } from '@wal/fake-s3';
import { walFileName } from '@wal/protocol';
import { createWalGenerator } from '@wal/protocol/wal-format';
import { openS3Store } from '@wal/s3';
import { compressFrameSync } from 'lz4-napi';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CLI_BIN, temporaryDirectory, waitUntil } from './e2e/harness.js';

/**
 * `wal restore -D s3://…` and `wal verify -D s3://…`, the built binary against s3rver (a real S3
 * HTTP implementation on loopback), configured from the AWS environment as PostgreSQL would pass
 * it to restore_command. The exit statuses are the directory's: 0 restored, 1 not there (at once),
 * 255 when the store cannot be read after the retries, 1 for that with standby.signal; verify 0,
 * 2, or 1 when it cannot read the archive.
 */

const MB = 1024 * 1024;
const BUCKET = 'wal-archive';
const TARGET = 'pg_wal/RECOVERYXLOG';
const SECRET = 'S3RVER';
const wal = () =>
  createWalGenerator({ seed: 5, segmentSize: MB, timeline: 1, systemId: 42n, serverVersion: 17 });
const name = (segment: bigint) => walFileName(1, segment, MB);

let s3: RunningS3rver;
let scratch: string;
let data: string;
let prefixes = 0;

beforeAll(async () => {
  s3 = await startS3rver({ buckets: [BUCKET] });
});
afterAll(async () => {
  await s3?.stop();
});
beforeEach(() => {
  scratch = temporaryDirectory('wal-restore-s3-');
  data = join(scratch, 'data');
  mkdirSync(join(data, 'pg_wal'), { recursive: true });
});
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

/** Uploads `files` under a new prefix of the bucket; its URL. */
async function bucketArchive(files: Record<string, Buffer | string>): Promise<string> {
  const url = `s3://${BUCKET}/archive-${++prefixes}`;
  const store = openS3Store(url, { env: s3.env });
  try {
    for (const [file, body] of Object.entries(files)) await store.put(file, Buffer.from(body));
  } finally {
    store.close();
  }
  return url;
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `wal COMMAND` in the data directory with s3rver's AWS environment (and `env` over it). */
function run(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_BIN, ...args],
      { cwd: data, env: { ...process.env, ...s3.env, ...env } },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? null), stdout, stderr });
      },
    );
  });
}

const restore = (args: string[], env?: Record<string, string>) =>
  run(['restore', '--retry-delay=10', ...args], env);

function restored(): Buffer {
  return readFileSync(join(data, TARGET));
}

describe('wal restore -D s3://…', () => {
  it('0: restores plain and .lz4 segments and a history file byte for byte', async () => {
    const generator = wal();
    const history = '1\t0/3000000\tno recovery target specified\n';
    const url = await bucketArchive({
      [name(1n)]: generator.segmentBytes(1n),
      [`${name(2n)}.lz4`]: compressFrameSync(generator.segmentBytes(2n)),
      '00000002.history': history,
    });
    for (const segment of [1n, 2n]) {
      expect(await restore(['-D', url, name(segment), TARGET])).toMatchObject({ code: 0, stderr: '' });
      expect(restored().equals(generator.segmentBytes(segment))).toBe(true);
    }
    expect(await restore(['-D', url, '00000002.history', TARGET])).toMatchObject({ code: 0, stderr: '' });
    expect(restored().toString()).toBe(history);
    expect(readdirSync(join(data, 'pg_wal'))).toEqual(['RECOVERYXLOG']);
  });

  it('serves the newest .partial padded with zeros, and says so', async () => {
    const generator = wal();
    const url = await bucketArchive({
      [name(1n)]: generator.segmentBytes(1n),
      [`${name(2n)}.partial`]: generator.segmentBytes(2n).subarray(0, 100_000),
    });
    const result = await restore(['-D', url, name(2n), TARGET]);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(
      /notice: "000000010000000000000002" is only in the archive as "000000010000000000000002\.partial": restored its 100000 bytes/,
    );
    expect(restored().length).toBe(MB);
  });

  it('1 at once: a missing segment or history file, writing nothing', async () => {
    const url = await bucketArchive({ [name(1n)]: wal().segmentBytes(1n) });
    // With a long retry delay, a retry would show as a warning and outlast the test.
    for (const wanted of [name(2n), '00000002.history']) {
      expect(await restore(['--retry-delay=600000', '-D', url, wanted, TARGET])).toMatchObject({
        code: 1,
        stderr: '',
      });
    }
    expect(readdirSync(join(data, 'pg_wal'))).toEqual([]);
  });

  it('255 for a bucket that does not exist, after the retries; 1 with standby.signal', async () => {
    const url = `s3://no-such-bucket/archive`;
    const failed = await restore(['--retries=2', '-D', url, name(1n), TARGET]);
    expect(failed.code).toBe(255);
    expect(
      failed.stderr.match(/warning: could not list the archive "s3:\/\/no-such-bucket\/archive"/g),
    ).toHaveLength(2);
    expect(failed.stderr).toMatch(
      /error: could not restore "000000010000000000000001": could not list the archive/,
    );
    writeFileSync(join(data, 'standby.signal'), '');
    const standby = await restore(['--retries=0', '-D', url, '00000002.history', TARGET]);
    expect(standby.code).toBe(1);
    expect(standby.stderr).toMatch(/standby\.signal is present/);
    expect(readdirSync(join(data, 'pg_wal'))).toEqual([]);
  });

  it('255 for a store that is down, naming the URL and never the secret', async () => {
    const url = await bucketArchive({ [name(1n)]: wal().segmentBytes(1n) });
    const secret = 'do-not-print-this-secret-0123456789';
    const down = await restore(['--retries=1', '-D', url, name(1n), TARGET], {
      AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
      AWS_SECRET_ACCESS_KEY: secret,
    });
    expect(down.code).toBe(255);
    expect(down.stderr).toContain(`"${url}/${name(1n)}"`);
    expect(down.stderr).not.toContain(secret);
    expect(readdirSync(join(data, 'pg_wal'))).toEqual([]);
  });

  it('255 for a corrupt segment in the bucket, and for an s3:// URL that is no bucket', async () => {
    const lz4 = compressFrameSync(wal().segmentBytes(1n));
    lz4.fill(0xab, 20, 60);
    const url = await bucketArchive({ [`${name(1n)}.lz4`]: lz4, [name(2n)]: wal().segmentBytes(3n) });
    const corrupt = await restore(['--retries=0', '-D', url, name(1n), TARGET]);
    expect(corrupt.code).toBe(255);
    expect(corrupt.stderr).toMatch(
      /could not decompress "s3:\/\/wal-archive\/archive-\d+\/000000010000000000000001\.lz4"/,
    );
    const misnamed = await restore(['--retries=0', '-D', url, name(2n), TARGET]);
    expect(misnamed.code).toBe(255);
    expect(misnamed.stderr).toMatch(/is not the WAL segment 000000010000000000000002/);
    const invalid = await restore(['--retry-delay=600000', '-D', 's3://Not_A_Bucket/x', name(1n), TARGET]);
    expect(invalid.code).toBe(255);
    expect(invalid.stderr).toMatch(/is not a valid S3 location/);
    expect(readdirSync(join(data, 'pg_wal'))).toEqual([]);
  });

  it('--prefetch fetches the next segments from the bucket into a bounded spool and serves them', async () => {
    const generator = wal();
    const files: Record<string, Buffer> = {};
    for (let segment = 1n; segment <= 6n; segment += 1n)
      files[name(segment)] = generator.segmentBytes(segment);
    const url = await bucketArchive(files);
    const spool = join(scratch, 'spool');
    const prefetch = ['--prefetch=3', `--spool=${spool}`, '-D', url];
    expect(await restore([...prefetch, name(1n), TARGET])).toMatchObject({ code: 0, stderr: '' });
    await waitUntil(() => [2n, 3n, 4n].every((segment) => existsSync(join(spool, name(segment)))), {
      description: 'segments 2 to 4 in the spool',
    });
    await waitUntil(() => !existsSync(join(spool, 'prefetch.lock')), {
      description: 'the prefetcher to stop',
    });
    expect(readdirSync(spool).sort()).toEqual([name(2n), name(3n), name(4n)]);
    // Served from the spool even with the store down.
    const down = { AWS_ENDPOINT_URL: 'http://127.0.0.1:9' };
    expect(await restore([...prefetch, name(2n), TARGET], down)).toMatchObject({ code: 0, stderr: '' });
    expect(restored().equals(generator.segmentBytes(2n))).toBe(true);
    expect(existsSync(join(spool, name(2n)))).toBe(false);
  });
});

/** Faults s3rver cannot make, from the scripted endpoint: what the exit status is after each. */
describe('wal restore -D s3://… and a failing store', () => {
  let scripted: ScriptedS3;
  const url = 's3://wal-archive/db';
  const generator = wal();

  beforeAll(async () => {
    scripted = await startScriptedS3();
    scripted.seed(`db/${name(1n)}`, generator.segmentBytes(1n));
  });
  afterAll(async () => {
    await scripted?.stop();
  });

  it('0 after 503 SlowDown twice: the store retried, no warning', async () => {
    scripted.fail({ operation: 'GET', times: 2, fault: { kind: 'error', status: 503, code: 'SlowDown' } });
    const result = await restore(['-D', url, name(1n), TARGET], scripted.env);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(restored().equals(generator.segmentBytes(1n))).toBe(true);
    expect(scripted.pendingFaults).toBe(0);
  });

  it('255 after the retries while the store is down; 0 once it is back', async () => {
    await scripted.down('refuse');
    try {
      const result = await restore(['--retries=1', '-D', url, name(1n), TARGET], scripted.env);
      expect(result.code).toBe(255);
      expect(
        result.stderr.match(/warning: could not look up "s3:\/\/wal-archive\/db\/000000010000000000000001"/g),
      ).toHaveLength(1);
      expect(result.stderr).toMatch(/error: could not restore "000000010000000000000001"/);
      expect(result.stderr).not.toContain(scripted.env.AWS_SECRET_ACCESS_KEY);
    } finally {
      await scripted.up();
    }
    expect(await restore(['-D', url, name(1n), TARGET], scripted.env)).toMatchObject({ code: 0 });
  });

  it('1 at once for a missing segment, one request per form and a listing', async () => {
    scripted.requests.length = 0;
    const result = await restore(['--retry-delay=600000', '-D', url, name(2n), TARGET], scripted.env);
    expect(result).toMatchObject({ code: 1, stderr: '' });
    expect(scripted.requests.map((request) => request.operation)).toEqual([...Array(8).fill('HEAD'), 'LIST']);
  });
});

describe('wal verify -D s3://…', () => {
  it('0 for a sound archive, 2 with the problems a directory copy shows, 1 for a missing bucket', async () => {
    const generator = wal();
    const files: Record<string, Buffer> = {};
    for (let segment = 1n; segment <= 4n; segment += 1n)
      files[name(segment)] = generator.segmentBytes(segment);
    const sound = await run(['verify', '-D', await bucketArchive(files), '--json']);
    expect(sound.code, sound.stderr).toBe(0);
    expect(JSON.parse(sound.stdout)).toMatchObject({ sound: true, filesChecked: 4, bytesChecked: 4 * MB });

    const broken = Buffer.from(files[name(3n)]!);
    broken.writeUInt8(broken.readUInt8(3 * 8192 + 9) ^ 0x01, 3 * 8192 + 9);
    const faulty = { ...files, [name(3n)]: broken };
    delete faulty[name(2n)];
    const directory = join(scratch, 'faulty');
    mkdirSync(directory);
    for (const [file, body] of Object.entries(faulty)) writeFileSync(join(directory, file), body);
    const fromBucket = await run(['verify', '-D', await bucketArchive(faulty), '--json']);
    const fromDirectory = await run(['verify', '-D', directory, '--json']);
    expect(fromBucket.code).toBe(2);
    const { archive: _bucket, ...bucketReport } = JSON.parse(fromBucket.stdout);
    const { archive: _directory, ...directoryReport } = JSON.parse(fromDirectory.stdout);
    expect(bucketReport).toEqual(directoryReport);
    expect(bucketReport.problems).toHaveLength(1);
    expect(bucketReport.missing).toHaveLength(1);

    const missing = await run(['verify', '-D', 's3://no-such-bucket/archive']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/could not list the archive "s3:\/\/no-such-bucket\/archive"/);
    expect(missing.stderr).not.toContain(SECRET);
  });
});
