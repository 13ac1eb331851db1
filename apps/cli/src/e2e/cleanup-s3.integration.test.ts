import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RunningS3rver, type ScriptedS3, startS3rver, startScriptedS3 } from '@wal/fake-s3';
import { openS3Store } from '@wal/s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXTENSIONS, mixedArchive, mixedArchiveFiles, OLDEST_KEPT } from './cleanup-fixture.js';
import { CLI_BIN, temporaryDirectory } from './harness.js';

/**
 * `wal cleanup -D s3://BUCKET/PREFIX`, the built binary, against s3rver (a real S3 HTTP
 * implementation on loopback). The oracle is `wal cleanup` on a directory holding the same files,
 * itself checked against pg_archivecleanup 15 (cleanup-comparison.integration.test.ts): the same
 * lines with `s3://BUCKET/PREFIX/NAME` for `DIRECTORY/NAME`, in the same order, and the same names
 * left. Faults s3rver cannot make come from the scripted endpoint.
 */

const BUCKET = 'wal-archive';
const HINT = 'wal cleanup: hint: Try "wal cleanup --help" for more information.\n';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `wal cleanup ARGS` with the AWS environment `env` (over this process's). */
function walCleanup(args: readonly string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_BIN, 'cleanup', ...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? null), stdout, stderr });
      },
    );
  });
}

const withExtension = (extension: string | undefined) => (extension === undefined ? [] : ['-x', extension]);

let scratch: string;
let mixed: string;

beforeAll(() => {
  scratch = temporaryDirectory('cleanup-s3');
  mixed = join(scratch, 'mixed');
  mixedArchive(mixed);
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('wal cleanup -D s3://… decides as on a directory (s3rver)', () => {
  let s3: RunningS3rver;
  let bucketMixed: string;
  let copies = 0;

  /** The mixed archive under a new prefix (an object below it stands for `archive_status/`). */
  async function uploadMixed(): Promise<string> {
    const url = `s3://${BUCKET}/mixed-${++copies}`;
    const store = openS3Store(url, { env: s3.env });
    const below = openS3Store(`${url}/archive_status`, { env: s3.env });
    try {
      const files = [...mixedArchiveFiles()];
      // A few PUTs at a time: some 300 objects.
      for (let start = 0; start < files.length; start += 8)
        await Promise.all(
          files.slice(start, start + 8).map(([name, body]) => store.put(name, Buffer.from(body))),
        );
      await below.put('000000010000000000000001.done', Buffer.alloc(0));
    } finally {
      store.close();
      below.close();
    }
    return url;
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

  /** A fresh directory copy of the mixed archive. */
  function directoryCopy(): string {
    const directory = join(scratch, `copy-${++copies}`);
    cpSync(mixed, directory, { recursive: true });
    return directory;
  }

  const cleanup = (args: readonly string[]) => walCleanup(args, s3.env);

  beforeAll(async () => {
    s3 = await startS3rver({ buckets: [BUCKET] });
    bucketMixed = await uploadMixed();
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it.each(OLDEST_KEPT)(
    '-n lists the same files in the same order, with and without -x, keeping %s',
    async (oldest) => {
      for (const extension of [undefined, ...EXTENSIONS]) {
        const args = ['-n', ...withExtension(extension)];
        const [fromDirectory, fromBucket] = await Promise.all([
          cleanup([...args, '-D', mixed, oldest]),
          cleanup([...args, '-D', bucketMixed, oldest]),
        ]);
        expect(fromDirectory, `-x ${extension}`).toMatchObject({ code: 0, stderr: '' });
        expect(fromBucket, `-x ${extension}`).toEqual({
          ...fromDirectory,
          stdout: fromDirectory.stdout.replaceAll(`${mixed}/`, `${bucketMixed}/`),
        });
      }
      expect(await objects(bucketMixed)).toEqual([...mixedArchiveFiles().keys()].sort());
    },
    // Eighteen runs of the binary each: generous on a loaded machine.
    180_000,
  );

  it.each([
    ['000000020000000000000010.00000028.backup', undefined],
    ['000000010000000000000010', '.gz'],
    ['FFFFFFFF0000000100000000', undefined],
  ])('without -n leaves the same names as on a directory, keeping %s, -x %s', async (oldest, extension) => {
    const directory = directoryCopy();
    const url = await uploadMixed();
    const args = withExtension(extension);
    expect(await cleanup([...args, '-D', directory, oldest])).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(await cleanup([...args, '-D', url, oldest])).toEqual({ code: 0, stdout: '', stderr: '' });
    const left = readdirSync(directory).filter((name) => name !== 'archive_status');
    expect(await objects(url)).toEqual(left.sort());
    expect(left.length).toBeLessThan(mixedArchiveFiles().size);
    expect(await objects(`${url}/archive_status`)).toEqual(['000000010000000000000001.done']);
  });

  it('-d prints the same lines, in the same order, with s3:// paths', async () => {
    const oldest = '000000010000000000000010';
    for (const dryRun of [true, false]) {
      const directory = directoryCopy();
      const url = await uploadMixed();
      const flags = dryRun ? ['-d', '-n', '-x', '.gz'] : ['-d'];
      const fromDirectory = await cleanup([...flags, '-D', directory, oldest]);
      const fromBucket = await cleanup([...flags, '-D', url, oldest]);
      expect(fromDirectory.code).toBe(0);
      expect(fromBucket).toEqual({
        code: 0,
        stdout: fromDirectory.stdout.replaceAll(`${directory}/`, `${url}/`),
        stderr: fromDirectory.stderr.replaceAll(`${directory}/`, `${url}/`),
      });
      expect(fromBucket.stderr.split('\n')[0]).toBe(
        `wal cleanup: keeping WAL file "${url}/${oldest}" and later`,
      );
      expect(fromBucket.stderr).toContain(
        dryRun
          ? `wal cleanup: file "${url}/00000001000000000000000E.gz" would be removed\n`
          : `wal cleanup: removing file "${url}/00000001000000000000000E.lz4.partial"\n`,
      );
    }
  });

  it('an empty prefix: 0, nothing to do', async () => {
    expect(await cleanup(['-n', '-D', `s3://${BUCKET}/nothing-here`, '000000010000000000000010'])).toEqual({
      code: 0,
      stdout: '',
      stderr: '',
    });
  });

  it('1 for a bucket that does not exist, naming it', async () => {
    const result = await cleanup(['-D', 's3://no-such-bucket/archive', '000000010000000000000010']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(
      /^wal cleanup: error: could not list the archive "s3:\/\/no-such-bucket\/archive": LIST s3:\/\/no-such-bucket\/archive failed: NoSuchBucket \(HTTP 404\): .*\n$/,
    );
  });

  it('2 for a malformed s3:// URL and for a bad name, asking the store nothing', async () => {
    const down = { AWS_ENDPOINT_URL: 'http://127.0.0.1:9' };
    const location = await walCleanup(['-D', 's3://Not_A_Bucket/x', 'bad'], { ...s3.env, ...down });
    expect(location).toEqual({
      code: 2,
      stdout: '',
      stderr: `wal cleanup: error: "s3://Not_A_Bucket/x" is not a valid S3 location: the bucket name must be 3 to 63 lower-case letters, digits, dots and hyphens. Use s3://BUCKET/PREFIX.\n${HINT}`,
    });
    const name = await walCleanup(['-D', bucketMixed, '00000002.history'], { ...s3.env, ...down });
    expect(name.code).toBe(2);
    expect(name.stderr).toMatch(/^wal cleanup: error: invalid file name argument "00000002\.history": /);
  });
});

/** Faults s3rver cannot make: an outage, a DELETE refused or failing part-way through. */
describe('wal cleanup -D s3://… and a failing store (scripted endpoint)', () => {
  let s3: ScriptedS3;
  const url = `s3://${BUCKET}/db`;
  const oldest = '000000010000000000000010';
  const segments = [
    '00000001000000000000000D',
    '00000001000000000000000E.gz',
    '00000002000000000000000F.partial',
  ];
  const keys = () => [...s3.objects.keys()].sort();
  const cleanup = (args: readonly string[]) => walCleanup(args, s3.env);

  beforeAll(async () => {
    s3 = await startScriptedS3();
  });
  afterAll(async () => {
    await s3?.stop();
  });
  beforeEach(() => {
    s3.clearFaults();
    s3.objects.clear();
    for (const name of [...segments, oldest, '00000002.history']) s3.seed(`db/${name}`, Buffer.from(name));
  });

  it('1 while the store is down (after the retries): nothing removed, the secret never printed', async () => {
    await s3.down('refuse');
    let result: Run;
    try {
      result = await cleanup(['-d', '-D', url, oldest]);
    } finally {
      await s3.up();
    }
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(
      new RegExp(
        `^wal cleanup: keeping WAL file "${url}/${oldest}" and later\nwal cleanup: error: could not list the archive "${url}": .*ECONNREFUSED.*\n$`,
      ),
    );
    expect(result.stderr).not.toContain(s3.env.AWS_SECRET_ACCESS_KEY);
    expect(keys()).toHaveLength(5);
  });

  it('1 for credentials the store refuses, nothing removed', async () => {
    const result = await walCleanup(['-D', url, oldest], { ...s3.env, AWS_ACCESS_KEY_ID: 'SOMEONE-ELSE' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^wal cleanup: error: could not list the archive ".*": .*InvalidAccessKeyId \(HTTP 403\)/,
    );
    expect(keys()).toHaveLength(5);
  });

  /** The directory form, stopped at the same file (a directory cannot be unlinked): the oracle. */
  function directoryStoppedAt(name: string): Promise<Run> & { directory: string } {
    const directory = join(scratch, `stopped-${name}`);
    mkdirSync(join(directory, name), { recursive: true });
    for (const other of [...segments, oldest, '00000002.history'])
      if (other !== name) writeFileSync(join(directory, other), other);
    return Object.assign(cleanup(['-d', '-D', directory, oldest]), { directory });
  }

  it.each([
    ['refused', { kind: 'error', status: 403, code: 'AccessDenied', message: 'Access Denied' }, 1],
    ['reset until the retries run out', { kind: 'reset' }, Number.POSITIVE_INFINITY],
  ] as const)(
    'a DELETE %s part-way: 1 at that file, as the directory form stops',
    async (_what, fault, times) => {
      const failing = segments[1] ?? '';
      s3.fail({ operation: 'DELETE', key: `db/${failing}`, times, fault });
      const ours = await cleanup(['-d', '-D', url, oldest]);
      const oracle = directoryStoppedAt(failing);
      const theirs = await oracle;
      expect(theirs.code).toBe(1);
      expect(ours.code).toBe(1);
      expect(ours.stdout).toBe('');
      const [directoryError, ...directoryLines] = theirs.stderr.trimEnd().split('\n').reverse();
      const [bucketError, ...bucketLines] = ours.stderr.trimEnd().split('\n').reverse();
      expect(bucketLines.reverse()).toEqual(
        directoryLines.reverse().map((line) => line.replaceAll(`${oracle.directory}/`, `${url}/`)),
      );
      const prefix = (line: string | undefined) => line?.slice(0, line.indexOf('": ') + 3);
      expect(prefix(directoryError)).toBe(
        `wal cleanup: error: could not remove file "${oracle.directory}/${failing}": `,
      );
      expect(prefix(bucketError)).toBe(`wal cleanup: error: could not remove file "${url}/${failing}": `);
      expect(bucketError).toMatch(/DELETE s3:\/\/wal-archive\/db\/00000001000000000000000E\.gz failed: /);
      expect(keys()).toEqual(
        [`db/${segments[1]}`, `db/${segments[2]}`, `db/${oldest}`, 'db/00000002.history'].sort(),
      );
    },
  );
});
