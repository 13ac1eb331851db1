import { execFile } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type RunningS3rver, startS3rver } from '@wal/fake-s3';
import type { Cluster } from '@wal/pg-cluster';
import { openS3Store } from '@wal/s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, describeRun, suiteVersion, useSuiteServer } from './harness.js';
import {
  archiveFrom,
  backupFor,
  commitRows,
  recover,
  restoreCommand,
  rowCount,
  serverUserDirectory,
} from './restore-harness.js';

/**
 * Point-in-time recovery from object storage (issue 14): `wal receive` writes a directory archive
 * (plain, and lz4), its files (the final `.partial` included) are uploaded as they are to s3rver,
 * a real S3 HTTP implementation on loopback, and a base backup taken without WAL recovers through
 * `restore_command = 'AWS_…=… node run.js restore -D s3://BUCKET/PREFIX %f %p'` to the last commit,
 * the lz4 one with --prefetch. `wal verify -D s3://…` passes the same archive with the report it
 * gives for the directory. A bucket that is not there stops recovery with FATAL (exit 255).
 */

const run = promisify(execFile);
const VERSIONS = [...new Set([suiteVersion(18), suiteVersion(14)])];
const BUCKET = 'wal-archive';
const FORMS = [
  { name: 'plain', compress: [], prefetch: false },
  { name: 'lz4', compress: ['-Z', 'lz4'], prefetch: true },
] as const;

/** Uploads every file of a directory archive, as it is, under `s3://BUCKET/PREFIX`; the URL. */
async function upload(s3: RunningS3rver, directory: string, prefix: string): Promise<string> {
  const url = `s3://${BUCKET}/${prefix}`;
  const store = openS3Store(url, { env: s3.env });
  try {
    for (const name of readdirSync(directory)) await store.put(name, readFileSync(join(directory, name)));
  } finally {
    store.close();
  }
  return url;
}

/** `wal verify --json`'s exit status and report without its location (asynchronous: s3rver runs here). */
async function verifyReport(archive: string, env: Record<string, string>) {
  const result = await run(process.execPath, [CLI_BIN, 'verify', '-D', archive, '--json'], {
    env: { ...process.env, ...env },
  }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code?: number; stdout?: string }) => ({ code: error.code, stdout: error.stdout ?? '' }),
  );
  const { archive: _location, ...report } = JSON.parse(result.stdout) as Record<string, unknown>;
  return { code: result.code, report };
}

/** A copy of a directory archive with one byte flipped inside the first page of its second segment. */
function withFault(directory: string, copy: string): string {
  cpSync(directory, copy, { recursive: true });
  const victim = readdirSync(copy)
    .filter((name) => /^[0-9A-F]{24}$/.test(name))
    .sort()[1]!;
  const bytes = readFileSync(join(copy, victim));
  bytes.writeUInt8(bytes.readUInt8(100) ^ 0x10, 100);
  writeFileSync(join(copy, victim), bytes);
  return victim;
}

describe.each(VERSIONS)('wal restore -D s3://… on PostgreSQL %i', (version) => {
  const suite = useSuiteServer({ version, prefix: `restore-s3-${version}` });
  let s3: RunningS3rver;

  beforeAll(async () => {
    s3 = await startS3rver({ buckets: [BUCKET] });
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it('stops recovery with FATAL when the bucket is not there', async () => {
    const recovery = await backupFor(
      suite.cluster,
      restoreCommand('s3://no-such-bucket/archive', { env: s3.env }),
    );
    try {
      await expect(recovery.start()).rejects.toThrow();
      const log = readFileSync(recovery.logPath, 'utf8');
      expect(log).toMatch(
        /FATAL: {2}could not restore file "[0-9A-F]{8}(\.history|[0-9A-F]{16})" from archive: child process exited with exit code 255/,
      );
      expect(log).toMatch(
        /wal restore: error: could not restore .*could not list the archive "s3:\/\/no-such-bucket\/archive"/,
      );
      expect(log).not.toMatch(/archive recovery complete/);
    } finally {
      await recovery.stop();
    }
  }, 120_000);

  it('recovers a base backup to the last commit from plain and lz4 archives in the bucket, .partial included', async () => {
    const { cluster: primary } = suite;
    await primary.sql('CREATE TABLE committed (id integer PRIMARY KEY, payload text)');
    const directories = FORMS.map((form) => suite.directory(`archive-${form.name}`));
    const receivers = await Promise.all(
      FORMS.map((form, index) => archiveFrom(primary, directories[index]!, form.compress)),
    );
    const restored: Cluster[] = [];
    try {
      for (const form of FORMS) {
        const spool = form.prefetch ? serverUserDirectory(suite.directory(`spool-${form.name}`)) : undefined;
        const url = `s3://${BUCKET}/${version}/${form.name}`;
        restored.push(await backupFor(primary, restoreCommand(url, { spool, env: s3.env })));
      }
      // Several complete segments, then commits that only the last, unfinished segment holds.
      await commitRows(primary, 1, 3000, 1000);
      await commitRows(primary, 3001, 200, 1_000_000);
      const final = await rowCount(primary);
      expect(final).toBe(3200);
      await primary.shutdown('fast');
      for (const receiver of receivers) {
        const result = await receiver.wait(30_000);
        expect(result.code, describeRun(result)).not.toBeNull();
      }

      for (const [index, form] of FORMS.entries()) {
        const directory = directories[index]!;
        expect(readdirSync(directory).some((name) => name.endsWith('.partial'))).toBe(true);
        const url = await upload(s3, directory, `${version}/${form.name}`);
        // The bucket's archive verifies as the directory does.
        const sound = await verifyReport(url, s3.env);
        expect(sound).toMatchObject({ code: 0, report: { sound: true } });
        expect(sound).toEqual(await verifyReport(directory, {}));

        const server = restored[index]!;
        const log = await recover(server);
        expect(await rowCount(server), `${form.name} archive`).toBe(final);
        expect(log).toMatch(/restored log file "[0-9A-F]{24}" from archive/);
        expect(log).toMatch(
          /wal restore: notice: "[0-9A-F]{24}" is only in the archive as "[0-9A-F]{24}(\.lz4)?\.partial"/,
        );
        await server.stop();
      }

      // A fault injected into a copy: found in the bucket exactly as in the directory.
      const faulty = join(suite.base, 'faulty');
      const victim = withFault(directories[0]!, faulty);
      const fromBucket = await verifyReport(await upload(s3, faulty, `${version}/faulty`), s3.env);
      expect(fromBucket.code).toBe(2);
      // What follows a broken record depends on the WAL there; the first problem is the broken record.
      const problems = fromBucket.report.problems as { kind: string; file: string }[];
      expect(problems[0]).toMatchObject({ kind: 'record-crc', file: victim });
      expect(problems.every((problem) => problem.file === victim)).toBe(true);
      expect(fromBucket).toEqual(await verifyReport(faulty, {}));
    } finally {
      for (const server of restored) await server.stop();
      for (const receiver of receivers) receiver.child.kill('SIGINT');
      await primary.start();
    }
  }, 240_000);
});
