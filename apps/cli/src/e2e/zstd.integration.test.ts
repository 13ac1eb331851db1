import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  compareDecompressedWithPgWal,
  describeRun,
  flushLsn,
  generateWal,
  generateWalPast,
  insertLsn,
  listFiles,
  lsnFromText,
  lsnToText,
  MEGABYTE,
  type RunningProcess,
  runReceive,
  seededRandom,
  segmentStartOf,
  sleep,
  startReceive,
  suiteVersion,
  switchWal,
  useSuiteServer,
  waitForFile,
  walFileNameOf,
} from './harness.js';

/**
 * `-Z zstd` end to end: zstd(1) must accept every file (`zstd -t`) and decompress it to the
 * server's pg_wal bytes, and the resume scan must read `.zst` files back after SIGKILLs: each
 * restart starts where the directory says, and the directory ends as an uninterrupted run's would.
 *
 * zstd is in node:zlib from Node.js 22.15 on. On an older Node.js the test runner stays, and the
 * CLI runs on the Node.js 22 binary that scripts/node-lines.mjs fetches from the npm registry.
 */

const VERSION = suiteVersion(18);
const SEED = Number(process.env.WAL_E2E_SEED ?? 20261207);
const SEGMENTS = 4;
const KILLS = 6;
const NODE_HAS_ZSTD = 'createZstdCompress' in zlib;
const NODE_LINES = fileURLToPath(new URL('../../../../scripts/node-lines.mjs', import.meta.url));

/** zstd(1) is the oracle; without it the suite is skipped, unless CI requires the tools. */
function zstdSkipReason(): string | undefined {
  if (spawnSync('zstd', ['--version']).status === 0) return undefined;
  if (process.env.WAL_REQUIRE_CLIENT_TOOLS === '1') return undefined;
  return 'zstd(1) not found: install Debian zstd; the -Z zstd end-to-end tests are skipped';
}

/** This Node.js if it has zstd, else Node.js 22 from the npm registry (fetched once, cached). */
function nodeWithZstd(): string {
  if (NODE_HAS_ZSTD) return process.execPath;
  return execFileSync(process.execPath, [NODE_LINES, 'path', '22'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

/** The LSN a segment file's name starts at (1 MB segments: 4096 per xlogid). */
function segmentLsnOf(name: string): bigint {
  const high = BigInt(`0x${name.slice(8, 16)}`);
  const segment = BigInt(`0x${name.slice(16, 24)}`);
  return (high << 32n) + segment * BigInt(MEGABYTE);
}

/** pg_receivewal's FindStreamingStart: the newest .partial's segment, else the one after the newest file. */
function expectedStart(directory: string): bigint {
  const newest = listFiles(directory).at(-1)!;
  const start = segmentLsnOf(newest);
  return newest.endsWith('.partial') ? start : start + BigInt(MEGABYTE);
}

function startedAt(stderr: string): bigint {
  const match = /starting log streaming at (\S+) \(timeline 1\)/.exec(stderr);
  if (match === null) throw new Error(`no "starting log streaming" line in:\n${stderr}`);
  return lsnFromText(match[1]!);
}

/** Files zstd(1) refuses, with what it said. */
function zstdTestFailures(directory: string): string[] {
  const failures: string[] = [];
  for (const name of listFiles(directory)) {
    const result = spawnSync('zstd', ['--test', '--quiet', join(directory, name)], { encoding: 'utf8' });
    if (result.status !== 0) failures.push(`${name}: ${result.stderr.trim()} (exit ${result.status})`);
  }
  return failures;
}

const skipReason = zstdSkipReason();
if (skipReason !== undefined) console.warn(skipReason);

describe.skipIf(skipReason !== undefined)(`-Z zstd on PostgreSQL ${VERSION} (seed ${SEED})`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'zstd', table: 'churn' });
  let node: string;

  beforeAll(() => {
    node = nodeWithZstd();
  });

  it(`survives ${KILLS} SIGKILLs, resumes from its .zst files, and zstd(1) reads pg_wal's bytes back`, async () => {
    const { cluster } = suite;
    const random = seededRandom(SEED);
    const directory = suite.directory('zstd');
    const receive = (extra: string[]) =>
      startReceive(cluster, ['--directory', directory, '--compress', 'zstd', '--verbose', ...extra], {
        node,
      });

    await switchWal(cluster);
    const start = segmentStartOf(await flushLsn(cluster), MEGABYTE);
    const endLsn = start + BigInt(SEGMENTS * MEGABYTE) - 1n;
    let current: RunningProcess = receive([]);
    await current.waitForStderr(/starting log streaming at/);
    await generateWal(cluster, 'churn', 1024);
    expect(await waitForFile(directory, /\.partial$/)).toBe(
      `${walFileNameOf(1, start, MEGABYTE)}.zst.partial`,
    );

    // WAL at a steady pace while the kills go on, stopping two segments short of the end, so that
    // both complete .zst files and a .zst.partial are there for the restarts to scan.
    const killingCap = endLsn - BigInt(2 * MEGABYTE);
    let killing = true;
    const generator = (async () => {
      while (killing && (await insertLsn(cluster)) < killingCap) {
        await generateWal(cluster, 'churn', 96 * 1024);
        await sleep(200);
      }
    })();
    const restarts: string[] = [];
    try {
      for (let kill = 0; kill < KILLS; kill++) {
        await sleep(100 + Math.floor(random() * 500));
        const outcome = await current.killHard();
        expect(outcome.signal, describeRun(outcome)).toBe('SIGKILL');
        const expected = expectedStart(directory);
        restarts.push(`${listFiles(directory).join(' ')} -> ${lsnToText(expected)}`);
        current = receive([]);
        await current.waitForStderr(/starting log streaming at/);
        expect(startedAt(current.stderr), restarts.join('\n')).toBe(expected);
      }
    } finally {
      killing = false;
      await generator;
    }
    await current.killHard();
    await generateWalPast(cluster, 'churn', endLsn + 64n * 1024n);

    // To the end of the last segment but one, then on to the end: the second run must start right
    // after the newest complete .zst, which the scan has to find whole.
    const resumes: bigint[] = [];
    for (const stop of [endLsn - BigInt(MEGABYTE), endLsn]) {
      const resumeAt = expectedStart(directory);
      const run = await runReceive(
        cluster,
        [
          '--directory',
          directory,
          '--compress',
          'zstd',
          '--verbose',
          '--endpos',
          lsnToText(stop),
          '--no-loop',
        ],
        { node },
      );
      expect(run.code, `${describeRun(run)}\nrestarts:\n${restarts.join('\n')}`).toBe(0);
      expect(startedAt(run.stderr)).toBe(resumeAt);
      expect(run.stderr).not.toMatch(/skipping|warning/);
      resumes.push(resumeAt);
    }
    expect(resumes[1]).toBe(endLsn + 1n - BigInt(MEGABYTE));

    const expected = Array.from({ length: SEGMENTS }, (_, index) =>
      walFileNameOf(1, start + BigInt(index * MEGABYTE), MEGABYTE),
    );
    expect(listFiles(directory)).toEqual(expected.map((name) => `${name}.zst`));
    expect(zstdTestFailures(directory)).toEqual([]);
    const { compared, differences } = compareDecompressedWithPgWal(directory, cluster.pgWalDir);
    expect(differences).toEqual([]);
    expect(compared).toEqual(expected);
  }, 120_000);

  it.skipIf(NODE_HAS_ZSTD)(
    'on a Node.js without zstd, refuses to resume over .zst files and leaves them',
    async () => {
      const { cluster } = suite;
      const directory = suite.directory('zstd-on-old-node');
      await switchWal(cluster);
      const start = segmentStartOf(await flushLsn(cluster), MEGABYTE);
      const endLsn = start + BigInt(MEGABYTE) - 1n;
      const receiver = startReceive(
        cluster,
        ['--directory', directory, '-Z', 'zstd', '--verbose', '--endpos', lsnToText(endLsn), '--no-loop'],
        { node },
      );
      await receiver.waitForStderr(/starting log streaming at/);
      await generateWalPast(cluster, 'churn', endLsn + 64n * 1024n);
      const first = await receiver.wait(60_000);
      expect(first.code, describeRun(first)).toBe(0);
      const name = `${walFileNameOf(1, start, MEGABYTE)}.zst`;
      expect(listFiles(directory)).toEqual([name]);
      const before = readFileSync(join(directory, name));

      // The test's own Node.js (20) scans the directory before it connects.
      const again = await runReceive(cluster, ['--directory', directory, '--no-loop']);
      expect(again.code, describeRun(again)).toBe(1);
      expect(again.stderr).toMatch(
        /^wal receive: error: cannot check file "[0-9A-F]{24}\.zst": compression with zstd is not supported by this Node\.js v20\./m,
      );
      expect(listFiles(directory)).toEqual([name]);
      expect(readFileSync(join(directory, name)).equals(before)).toBe(true);
    },
  );
});
