import { execFile, execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { gzipSync } from 'node:zlib';
import { SEGMENT_SIZE, segment } from '@wal/archive/testing';
import { compressFrameSync } from 'lz4-napi';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI_BIN, temporaryDirectory, waitUntil } from './e2e/harness.js';

/**
 * `wal restore` as PostgreSQL runs it: the built binary, in a data directory, with `%f` and a
 * relative `%p`. Exit statuses are PostgreSQL's contract (spec/archive.md §1.2): 0 restored, 1 not
 * there, 255 (above 125) a failure, 1 for a failure when standby.signal is present.
 */

const SEGMENT_3 = '000000010000000000000003';
const TARGET = 'pg_wal/RECOVERYXLOG';

let scratch: string;
let archive: string;
let data: string;

beforeEach(() => {
  scratch = temporaryDirectory('wal-restore-cli-');
  archive = join(scratch, 'archive');
  data = join(scratch, 'data');
  mkdirSync(archive);
  mkdirSync(join(data, 'pg_wal'), { recursive: true });
});
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

interface Result {
  code: number | null;
  stderr: string;
}

/** Runs `wal restore` in the data directory, with fast retries unless the arguments say otherwise. */
function restore(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_BIN, 'restore', '--retry-delay=10', ...args],
      { cwd: data },
      (error, _stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stderr });
      },
    );
  });
}

function restored(): Buffer {
  return readFileSync(join(data, TARGET));
}

function walDirectory(): string[] {
  return readdirSync(join(data, 'pg_wal'));
}

describe('wal restore exit statuses', () => {
  it('0: restores plain, .gz and .lz4 segments byte for byte', async () => {
    writeFileSync(join(archive, SEGMENT_3), segment(3));
    writeFileSync(join(archive, '000000010000000000000004.gz'), gzipSync(segment(4)));
    writeFileSync(join(archive, '000000010000000000000005.lz4'), compressFrameSync(segment(5)));
    for (const [name, number] of [
      [SEGMENT_3, 3],
      ['000000010000000000000004', 4],
      ['000000010000000000000005', 5],
    ] as const) {
      expect(await restore('-D', archive, name, TARGET)).toEqual({ code: 0, stderr: '' });
      expect(restored().equals(segment(number))).toBe(true);
      expect(walDirectory()).toEqual(['RECOVERYXLOG']);
    }
  });

  it('1 at once: a missing segment or history file, writing nothing', async () => {
    expect(await restore('-D', archive, SEGMENT_3, TARGET)).toEqual({ code: 1, stderr: '' });
    // With a long retry delay, a retry would show as a warning: a missing history file is an answer.
    expect(
      await restore('--retry-delay=60000', '-D', archive, '00000002.history', 'pg_wal/RECOVERYHISTORY'),
    ).toEqual({ code: 1, stderr: '' });
    expect(walDirectory()).toEqual([]);
  });

  it('255 for an unreadable archive after retries; 1 with standby.signal', async () => {
    const missing = join(scratch, 'no-such-archive');
    const failed = await restore('--retries=2', '-D', missing, SEGMENT_3, TARGET);
    expect(failed.code).toBe(255);
    expect(failed.stderr.match(/warning: could not open archive directory/g)).toHaveLength(2);
    expect(failed.stderr).toMatch(
      /error: could not restore "000000010000000000000003": could not open archive directory ".*no-such-archive": ENOENT/,
    );
    writeFileSync(join(data, 'standby.signal'), '');
    const standby = await restore('--retries=0', '-D', missing, SEGMENT_3, TARGET);
    expect(standby.code).toBe(1);
    expect(standby.stderr).toMatch(/standby\.signal is present/);
    expect(walDirectory()).toEqual([]);
  });

  it('255 for an unreadable file (a directory where the segment should be)', async () => {
    mkdirSync(join(archive, SEGMENT_3));
    const result = await restore('--retries=0', '-D', archive, SEGMENT_3, TARGET);
    expect(result.code).toBe(255);
    expect(result.stderr).toMatch(/could not read ".*000000010000000000000003"/);
    expect(walDirectory()).toEqual([]);
  });

  it('255 for a corrupt .gz or .lz4, which is not delivered', async () => {
    const gzip = gzipSync(segment(3));
    gzip.writeUInt8(gzip.readUInt8(gzip.length - 6) ^ 0xff, gzip.length - 6);
    writeFileSync(join(archive, `${SEGMENT_3}.gz`), gzip);
    const lz4 = compressFrameSync(segment(4));
    lz4.fill(0xab, 20, 60);
    writeFileSync(join(archive, '000000010000000000000004.lz4'), lz4);
    for (const name of [SEGMENT_3, '000000010000000000000004']) {
      const result = await restore('--retries=1', '-D', archive, name, TARGET);
      expect(result.code).toBe(255);
      expect(result.stderr).toMatch(/error: could not restore ".*": could not decompress ".*(\.gz|\.lz4)"/);
      expect(walDirectory()).toEqual([]);
    }
  });

  it('255 for a segment of the wrong size', async () => {
    writeFileSync(join(archive, SEGMENT_3), segment(3, 100_000));
    const result = await restore('--retries=0', '-D', archive, SEGMENT_3, TARGET);
    expect(result.code).toBe(255);
    expect(result.stderr).toMatch(/decompresses to 100000 bytes instead of 1048576 bytes/);
    expect(walDirectory()).toEqual([]);
  });

  it('255 for a command line it cannot run (2 would read as "not found")', async () => {
    expect((await restore(SEGMENT_3, TARGET)).code).toBe(255);
    expect((await restore('-D', archive, SEGMENT_3)).code).toBe(255);
    expect((await restore('-D', archive, '--prefetch=x', SEGMENT_3, TARGET)).code).toBe(255);
    const badName = await restore('-D', archive, '../../etc/passwd', TARGET);
    expect(badName.code).toBe(255);
    expect(badName.stderr).toMatch(/is not a WAL file name/);
  });
});

describe('wal restore and .partial segments', () => {
  it('serves the newest partial padded with zeros, and says so', async () => {
    writeFileSync(join(archive, `${SEGMENT_3}.gz.partial`), gzipSync(segment(3, 200_000)));
    const result = await restore('-D', archive, SEGMENT_3, TARGET);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(
      /notice: "000000010000000000000003" is only in the archive as "000000010000000000000003\.gz\.partial": restored its 200000 bytes and 848576 zero bytes/,
    );
    expect(restored().length).toBe(SEGMENT_SIZE);
    expect(restored().subarray(0, 200_000).equals(segment(3, 200_000))).toBe(true);
  });

  it('1 for a partial with --no-partial, and for a stale partial behind a newer segment', async () => {
    writeFileSync(join(archive, `${SEGMENT_3}.partial`), segment(3));
    expect(await restore('--no-partial', '-D', archive, SEGMENT_3, TARGET)).toEqual({ code: 1, stderr: '' });
    writeFileSync(join(archive, '000000010000000000000004.lz4'), compressFrameSync(segment(4)));
    expect(await restore('-D', archive, SEGMENT_3, TARGET)).toEqual({ code: 1, stderr: '' });
    expect(walDirectory()).toEqual([]);
  });
});

describe('wal restore --prefetch', () => {
  const name = (segmentNumber: number) =>
    `0000000100000000000000${segmentNumber.toString(16).toUpperCase().padStart(2, '0')}`;
  const spoolSegments = (spool: string) => readdirSync(spool).filter((entry) => /^[0-9A-F]{24}$/.test(entry));

  it('fetches the next N segments into a bounded spool, serves and removes them, and never caches a missing history file', async () => {
    for (let number = 3; number <= 8; number += 1)
      writeFileSync(join(archive, name(number)), segment(number));
    const spool = join(scratch, 'spool');
    const prefetch = ['--prefetch=2', `--spool=${spool}`, '-D', archive];
    expect(await restore(...prefetch, name(3), TARGET)).toEqual({ code: 0, stderr: '' });
    await waitUntil(() => existsSync(join(spool, name(4))) && existsSync(join(spool, name(5))), {
      description: 'segments 4 and 5 in the spool',
    });
    // The prefetcher stops once the spool stays full; it never holds more than N segments.
    await waitUntil(() => !existsSync(join(spool, 'prefetch.lock')), {
      description: 'the prefetcher to stop',
    });
    expect(spoolSegments(spool)).toEqual([name(4), name(5)]);

    // Served from the spool: the archive's copy is gone.
    rmSync(join(archive, name(4)));
    expect(await restore(...prefetch, name(4), TARGET)).toEqual({ code: 0, stderr: '' });
    expect(restored().equals(segment(4))).toBe(true);
    expect(spoolSegments(spool)).not.toContain(name(4));
    await waitUntil(() => existsSync(join(spool, name(6))), { description: 'segment 6 in the spool' });
    await waitUntil(() => !existsSync(join(spool, 'prefetch.lock')), {
      description: 'the prefetcher to stop',
    });
    expect(spoolSegments(spool)).toEqual([name(5), name(6)]);
    expect(readdirSync(join(data, 'pg_wal'))).toEqual(['RECOVERYXLOG']);

    expect(await restore(...prefetch, '00000002.history', 'pg_wal/RECOVERYHISTORY')).toEqual({
      code: 1,
      stderr: '',
    });
    writeFileSync(join(archive, '00000002.history'), '1\t0/3000000\tno recovery target specified\n');
    expect(await restore(...prefetch, '00000002.history', 'pg_wal/RECOVERYHISTORY')).toEqual({
      code: 0,
      stderr: '',
    });
  });

  it('ignores a spool others can write: nothing planted there is served', async () => {
    const spool = join(scratch, 'spool');
    mkdirSync(spool);
    chmodSync(spool, 0o777);
    writeFileSync(join(spool, name(4)), segment(4));
    expect(await restore('--prefetch=1', `--spool=${spool}`, '-D', archive, name(4), TARGET)).toEqual({
      code: 1,
      stderr: '',
    });
    expect(walDirectory()).toEqual([]);
  });

  it('reads the archive when the spool copy is damaged', async () => {
    for (let number = 3; number <= 4; number += 1)
      writeFileSync(join(archive, name(number)), segment(number));
    const spool = join(scratch, 'spool');
    mkdirSync(spool);
    writeFileSync(join(spool, name(4)), segment(4, 5000));
    expect(await restore('--prefetch=1', `--spool=${spool}`, '-D', archive, name(4), TARGET)).toEqual({
      code: 0,
      stderr: '',
    });
    expect(restored().equals(segment(4))).toBe(true);
  });
});

describe('wal restore and a fast shutdown', () => {
  it('ends by SIGTERM, as PostgreSQL expects of a shutdown, and leaves no temporary file in pg_wal', async () => {
    // A FIFO stands in for an archive file that is slow to read: the copy is under way when the
    // signal comes.
    execFileSync('mkfifo', [join(archive, SEGMENT_3)]);
    const child = spawn(process.execPath, [CLI_BIN, 'restore', '-D', archive, SEGMENT_3, TARGET], {
      cwd: data,
      stdio: 'ignore',
    });
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    const writer = openSync(join(archive, SEGMENT_3), 'w');
    try {
      writeSync(writer, segment(3, 65536));
      await waitUntil(() => walDirectory().some((name) => name.endsWith('.tmp')), {
        description: 'the temporary file',
      });
      child.kill('SIGTERM');
    } finally {
      // The read under way returns (end of file); the copy sees the abort and cleans up.
      closeSync(writer);
    }
    expect(await ended).toEqual({ code: null, signal: 'SIGTERM' });
    expect(walDirectory()).toEqual([]);
  });
});

describe('wal restore and .zst archives', () => {
  const nodeHasZstd = 'createZstdDecompress' in zlib;
  const nodeLines = fileURLToPath(new URL('../../../scripts/node-lines.mjs', import.meta.url));

  /** zstd(1) compresses, as it is the oracle of the receive tests. */
  function zstdFile(path: string, data: Buffer): void {
    writeFileSync(`${path}.raw`, data);
    execFileSync('zstd', ['-q', '--rm', '-o', path, `${path}.raw`]);
  }

  it.skipIf(nodeHasZstd)('255 with what to do, on a Node.js without zstd', async () => {
    zstdFile(join(archive, `${SEGMENT_3}.zst`), segment(3));
    const result = await restore('-D', archive, SEGMENT_3, TARGET);
    expect(result.code).toBe(255);
    expect(result.stderr).toMatch(/zstd is not supported by this Node\.js v\d+.*Node\.js 22\.15 or later/);
    // Not retried: another try cannot help.
    expect(result.stderr).not.toMatch(/warning/);
    expect(walDirectory()).toEqual([]);
  });

  it('restores a .zst segment and pads a .zst.partial, on a Node.js with zstd', async () => {
    const node = nodeHasZstd
      ? process.execPath
      : execFileSync(process.execPath, [nodeLines, 'path', '22'], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'inherit'],
        }).trim();
    zstdFile(join(archive, `${SEGMENT_3}.zst`), segment(3));
    zstdFile(join(archive, '000000010000000000000004.zst.partial'), segment(4, 300_000));
    const run = (wanted: string) =>
      new Promise<Result>((resolve) => {
        execFile(
          node,
          [CLI_BIN, 'restore', '-D', archive, wanted, TARGET],
          { cwd: data },
          (error, _stdout, stderr) => {
            resolve({
              code: error === null ? 0 : typeof error.code === 'number' ? error.code : null,
              stderr,
            });
          },
        );
      });
    expect(await run(SEGMENT_3)).toEqual({ code: 0, stderr: '' });
    expect(restored().equals(segment(3))).toBe(true);
    const partial = await run('000000010000000000000004');
    expect(partial.code).toBe(0);
    expect(partial.stderr).toMatch(/restored its 300000 bytes/);
    expect(restored().subarray(0, 300_000).equals(segment(4, 300_000))).toBe(true);
    expect(restored().length).toBe(SEGMENT_SIZE);
  }, 120_000);
});
