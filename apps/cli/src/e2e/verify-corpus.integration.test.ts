import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { type Cluster, startCluster, testedVersions } from '@wal/pg-cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI_BIN,
  describeRun,
  flushLsn,
  generateWal,
  generateWalPast,
  insertLsn,
  listFiles,
  lsnToText,
  MEGABYTE,
  type RunningProcess,
  removeDirectory,
  runReceive,
  segmentStartOf,
  startReceive,
  switchWal,
  temporaryDirectory,
  useSuiteServer,
  walFileNameOf,
} from './harness.js';

/**
 * The corpus of issue 13: archives that `wal receive` made from real servers (every tested
 * version; a promotion to timeline 2 on 1 MB segments; plain, gzip, lz4 and zstd; one 16 MB
 * archive), and copies of the plain one with one fault each. `wal verify` must pass every sound
 * archive and name exactly the injected fault (kind, file, LSN); PostgreSQL 15's pg_waldump, which
 * reads only version 15 WAL (its page magic), must agree wherever it can see the fault.
 */

const VERSIONS = testedVersions();
const NODE_LINES = fileURLToPath(new URL('../../../../scripts/node-lines.mjs', import.meta.url));
const PG_WALDUMP = join(process.env.WAL_PG_CLIENT_BIN ?? '/usr/lib/postgresql/15/bin', 'pg_waldump');
const COMPRESSIONS = ['none', 'gzip', 'lz4', 'zstd'] as const;

/** This Node.js if it has zstd, else Node.js 22 from the npm registry (as the zstd e2e test does). */
function nodeWithZstd(): string {
  if ('createZstdCompress' in zlib) return process.execPath;
  return execFileSync(process.execPath, [NODE_LINES, 'path', '22'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

interface VerifyRun {
  code: number | null;
  report: {
    sound: boolean;
    timeline: number;
    filesChecked: number;
    missing: { firstFile: string; lastFile: string; startLsn: string; endLsn: string }[];
    problems: { kind: string; file?: string; lsn?: string; message: string }[];
  };
  stderr: string;
}

function verify(archive: string, node = process.execPath): VerifyRun {
  const result = spawnSync(node, [CLI_BIN, 'verify', '-D', archive, '--json'], { encoding: 'utf8' });
  let report: VerifyRun['report'];
  try {
    report = JSON.parse(result.stdout) as VerifyRun['report'];
  } catch {
    throw new Error(
      `wal verify printed no JSON (exit ${result.status}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  return { code: result.status, report, stderr: result.stderr };
}

const segmentLsn = (name: string, segmentSize: number) =>
  (BigInt(`0x${name.slice(8, 16)}`) << 32n) + BigInt(`0x${name.slice(16, 24)}`) * BigInt(segmentSize);

/**
 * The first record that lies inside one page of a segment, found without the verifier: page by
 * page, skip a continued record by its `xlp_rem_len`, take the record there if it ends on the page.
 */
function recordInsideOnePage(segment: Buffer): { offset: number; length: number } {
  for (let page = 8192; page < segment.length; page += 8192) {
    const info = segment.readUInt16LE(page + 2);
    const remaining = segment.readUInt32LE(page + 16);
    const offset = page + 24 + (info & 1 ? Math.ceil(remaining / 8) * 8 : 0);
    if (offset + 24 > page + 8192) continue;
    const length = segment.readUInt32LE(offset);
    if (length > 40 && offset + length <= page + 8192) return { offset, length };
  }
  throw new Error('no record inside one page');
}

interface Corpus {
  version: number;
  /** Archives by compression. */
  archives: Record<(typeof COMPRESSIONS)[number], string>;
  /** Complete timeline 1 segments of the plain archive; faults go into the second. */
  timelineOne: string[];
  /** A segment of another cluster with the victim's name. */
  foreign: Buffer;
  switchLsn: bigint;
}

/** The fault, and the one problem (or missing range) `wal verify` must report; a pg_waldump pattern if it sees it. */
interface Fault {
  name: string;
  apply(
    archive: string,
    corpus: Corpus,
    victim: string,
  ): { kind: string; file: string; lsn?: string } | 'missing';
  waldump?: RegExp;
}

const FAULTS: Fault[] = [
  {
    name: 'a flipped bit inside a record',
    apply(archive, _corpus, victim) {
      const path = join(archive, victim);
      const bytes = readFileSync(path);
      const record = recordInsideOnePage(bytes);
      const at = record.offset + 24 + Math.floor((record.length - 24) / 2);
      bytes.writeUInt8(bytes.readUInt8(at) ^ 0x04, at);
      writeFileSync(path, bytes);
      return {
        kind: 'record-crc',
        file: victim,
        lsn: lsnToText(segmentLsn(victim, MEGABYTE) + BigInt(record.offset)),
      };
    },
    waldump: /incorrect resource manager data checksum in record at/,
  },
  {
    name: 'a flipped bit in a page header',
    apply(archive, _corpus, victim) {
      const path = join(archive, victim);
      const bytes = readFileSync(path);
      bytes.writeUInt8(bytes.readUInt8(7 * 8192 + 10) ^ 0x01, 7 * 8192 + 10);
      writeFileSync(path, bytes);
      return { kind: 'page-header', file: victim, lsn: lsnToText(segmentLsn(victim, MEGABYTE) + 7n * 8192n) };
    },
    waldump: /unexpected pageaddr/,
  },
  {
    name: 'a flipped bit in a long header',
    apply(archive, _corpus, victim) {
      const path = join(archive, victim);
      const bytes = readFileSync(path);
      bytes.writeUInt8(bytes.readUInt8(33) ^ 0x01, 33);
      writeFileSync(path, bytes);
      return { kind: 'long-header', file: victim, lsn: lsnToText(segmentLsn(victim, MEGABYTE)) };
    },
    waldump: /segment size|different database system/,
  },
  {
    name: 'a truncated segment',
    apply(archive, _corpus, victim) {
      truncateSync(join(archive, victim), 300_000);
      return {
        kind: 'truncated-segment',
        file: victim,
        lsn: lsnToText(segmentLsn(victim, MEGABYTE) + 300_000n),
      };
    },
    waldump: /could not read file|read \d+ of|invalid record length|invalid magic number/,
  },
  {
    name: 'a missing segment',
    apply(archive, _corpus, victim) {
      rmSync(join(archive, victim));
      return 'missing';
    },
    waldump: /could not find file|No such file/,
  },
  {
    name: 'a segment of another cluster',
    apply(archive, corpus, victim) {
      writeFileSync(join(archive, victim), corpus.foreign);
      return { kind: 'foreign-system', file: victim, lsn: lsnToText(segmentLsn(victim, MEGABYTE)) };
    },
    waldump: /error/,
  },
  {
    name: 'a history file that disagrees',
    apply(archive, corpus) {
      const wrong = corpus.switchLsn + 3n * 8192n;
      writeFileSync(
        join(archive, '00000002.history'),
        `1\t${lsnToText(wrong)}\tno recovery target specified\n`,
      );
      return { kind: 'history', file: '00000002.history' };
    },
  },
  {
    name: 'a stale .partial',
    apply(archive, _corpus, victim) {
      copyFileSync(join(archive, victim), join(archive, `${victim}.partial`));
      return { kind: 'stale-partial', file: `${victim}.partial` };
    },
  },
];

/**
 * Four `wal receive` (plain, gzip, lz4, zstd), each through its own slot, stream from a standby
 * while the primary writes ~4 MB of WAL with a pg_switch_wal() in it; the standby is promoted and
 * writes on timeline 2 until past the receivers' common end position, inside a segment. They start
 * before the promotion because PostgreSQL 14 cannot tell a receiver where a slot stands. The gzip
 * one runs with `--verify`: real WAL, across the switch, must pass it.
 */
async function buildCorpus(
  primary: Cluster,
  standby: Cluster,
  base: string,
  version: number,
): Promise<Corpus> {
  const start = segmentStartOf(await flushLsn(primary), MEGABYTE);
  const end = start + BigInt(8 * MEGABYTE + 300_000);
  const archives = {} as Corpus['archives'];
  const receivers: RunningProcess[] = [];
  for (const compression of COMPRESSIONS) {
    await standby.sql(`SELECT pg_create_physical_replication_slot('corpus_${compression}', true)`);
    const directory = join(base, `archive-${compression}`);
    mkdirSync(directory, { mode: 0o700 });
    archives[compression] = directory;
    const args = ['--directory', directory, '--slot', `corpus_${compression}`, '--endpos', lsnToText(end)];
    if (compression !== 'none') args.push('--compress', compression);
    // One receiver also checks the WAL as it arrives: real WAL across the promotion must pass.
    if (compression === 'gzip') args.push('--verify');
    const node = compression === 'zstd' ? nodeWithZstd() : undefined;
    const receiver = startReceive(standby, [...args, '--no-loop', '--no-sync', '--verbose'], { node });
    await receiver.waitForStderr(/starting log streaming at/);
    receivers.push(receiver);
  }
  await generateWal(primary, 'churn', MEGABYTE);
  await switchWal(primary);
  await generateWal(primary, 'churn', 3 * MEGABYTE);
  const flushed = lsnToText(await flushLsn(primary));
  await standby.waitFor(`SELECT pg_last_wal_replay_lsn() >= '${flushed}'`);
  await standby.promote();
  await generateWalPast(standby, 'churn', end + 65_536n);
  for (const receiver of receivers) {
    const result = await receiver.wait(90_000);
    expect(result.code, describeRun(result)).toBe(0);
  }
  const history = readFileSync(join(archives.none, '00000002.history'), 'utf8');
  const switchText = /^1\s+(\S+)/m.exec(history)![1]!;
  const [high, low] = switchText.split('/').map((part) => BigInt(`0x${part}`));
  const timelineOne = listFiles(archives.none).filter((name) => /^00000001[0-9A-F]{16}$/.test(name));
  expect(timelineOne.length, listFiles(archives.none).join(' ')).toBeGreaterThanOrEqual(3);
  return {
    version,
    archives,
    timelineOne,
    foreign: await foreignSegment(version, timelineOne[1]!),
    switchLsn: (high! << 32n) + low!,
  };
}

/** The same-named segment of another, fresh cluster of the same version and segment size. */
async function foreignSegment(version: number, name: string): Promise<Buffer> {
  const other = await startCluster({
    version: version as 14,
    segmentSizeMb: 1,
    settings: { wal_keep_size: '256MB' },
  });
  try {
    await other.sql('CREATE TABLE churn (id integer, payload text)');
    const wanted = segmentLsn(name, MEGABYTE) + BigInt(MEGABYTE);
    while ((await insertLsn(other)) < wanted) await generateWal(other, 'churn', 512 * 1024);
    await switchWal(other);
    return readFileSync(join(other.pgWalDir, name));
  } finally {
    await other.stop();
  }
}

function pgWaldump(archive: string, corpus: Corpus, victim: string): { code: number | null; stderr: string } {
  const start = lsnToText(segmentLsn(corpus.timelineOne[0]!, MEGABYTE));
  const end = lsnToText(segmentLsn(victim, MEGABYTE) + BigInt(MEGABYTE));
  const result = spawnSync(
    PG_WALDUMP,
    ['--quiet', '--path', archive, '--timeline', '1', '--start', start, '--end', end],
    {
      encoding: 'utf8',
    },
  );
  return { code: result.status, stderr: result.stderr };
}

for (const version of VERSIONS) {
  describe(`wal verify on archives wal receive made from PostgreSQL ${version}`, () => {
    const suite = useSuiteServer({ version, prefix: `verify-${version}`, table: 'churn', standby: true });
    let corpus: Corpus;

    beforeAll(async () => {
      corpus = await buildCorpus(suite.cluster, suite.standby, suite.base, version);
    }, 240_000);

    it('passes the sound archives across the promotion: plain, gzip, lz4, zstd', () => {
      for (const compression of COMPRESSIONS) {
        const run = verify(corpus.archives[compression], compression === 'zstd' ? nodeWithZstd() : undefined);
        expect(run.report.problems, compression).toEqual([]);
        expect(run.report, compression).toMatchObject({ sound: true, timeline: 2, missing: [] });
        expect(run.code, compression).toBe(0);
      }
      if (version === 15 && existsSync(PG_WALDUMP)) {
        const victim = corpus.timelineOne[1]!;
        const waldump = pgWaldump(corpus.archives.none, corpus, victim);
        expect(waldump.code, waldump.stderr).toBe(0);
      }
    }, 120_000);

    for (const fault of FAULTS) {
      it(`finds exactly ${fault.name}`, () => {
        const copy = join(suite.base, `fault-${FAULTS.indexOf(fault)}`);
        cpSync(corpus.archives.none, copy, { recursive: true });
        const victim = corpus.timelineOne[1]!;
        const expected = fault.apply(copy, corpus, victim);
        const run = verify(copy);
        expect(run.code, run.stderr).toBe(2);
        if (expected === 'missing') {
          expect(run.report.problems).toEqual([]);
          expect(run.report.missing).toEqual([
            {
              firstFile: victim,
              lastFile: victim,
              startLsn: lsnToText(segmentLsn(victim, MEGABYTE)),
              endLsn: lsnToText(segmentLsn(victim, MEGABYTE) + BigInt(MEGABYTE)),
            },
          ]);
        } else {
          expect(run.report.missing).toEqual([]);
          expect(run.report.problems).toEqual([expect.objectContaining(expected)]);
        }
        if (fault.waldump !== undefined && version === 15 && existsSync(PG_WALDUMP)) {
          const waldump = pgWaldump(copy, corpus, victim);
          expect(waldump.code, waldump.stderr).not.toBe(0);
          expect(waldump.stderr).toMatch(fault.waldump);
        }
        rmSync(copy, { recursive: true, force: true });
      }, 60_000);
    }
  });
}

describe('wal verify on an archive of 16 MB segments', () => {
  let cluster: Cluster;
  let archive: string;
  const version = VERSIONS.at(-1)!;

  beforeAll(async () => {
    cluster = await startCluster({ version, segmentSizeMb: 16, settings: { wal_keep_size: '256MB' } });
    await cluster.sql('CREATE TABLE churn (id integer, payload text)');
    await cluster.sql("SELECT pg_create_physical_replication_slot('corpus', true)");
    for (let round = 0; round < 3; round++) {
      await generateWal(cluster, 'churn', MEGABYTE);
      await switchWal(cluster);
    }
    await generateWal(cluster, 'churn', MEGABYTE);
    const end = await insertLsn(cluster);
    archive = temporaryDirectory('verify-16mb');
    const result = await runReceive(cluster, [
      '--directory',
      archive,
      '--slot',
      'corpus',
      '--endpos',
      lsnToText(end),
      '--compress',
      'gzip',
      '--no-loop',
      '--no-sync',
    ]);
    expect(result.code, describeRun(result)).toBe(0);
  }, 240_000);

  afterAll(async () => {
    await cluster?.stop();
    removeDirectory(archive);
  });

  it(`passes it (PostgreSQL ${version}, gzip) and finds a missing segment`, () => {
    const run = verify(archive);
    expect(run.report.problems).toEqual([]);
    expect(run.report).toMatchObject({ sound: true, segmentSize: 16 * MEGABYTE });
    expect(run.report.filesChecked).toBeGreaterThanOrEqual(3);
    const second = listFiles(archive).filter((name) => name.endsWith('.gz'))[1]!;
    rmSync(join(archive, second));
    const broken = verify(archive);
    expect(broken.code).toBe(2);
    expect(broken.report.missing).toEqual([
      expect.objectContaining({ firstFile: second.slice(0, 24), lastFile: second.slice(0, 24) }),
    ]);
    expect(walFileNameOf(1, segmentLsn(second, 16 * MEGABYTE), 16 * MEGABYTE)).toBe(second.slice(0, 24));
  }, 120_000);
});
