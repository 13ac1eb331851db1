import { describe, expect, it } from 'vitest';
import {
  compareDecompressedWithPgWal,
  compareDirectories,
  compareDirectoriesDecompressed,
  describeRun,
  flushLsn,
  generateWal,
  insertLsn,
  listFiles,
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
 * Resume after kill -9: `wal receive` is killed with SIGKILL at pseudo-random moments
 * while the server writes WAL, and started again each time on the same directory; a last run
 * goes to a fixed --endpos with --no-loop. The directory must then equal that of a run that was
 * never interrupted, and every segment must equal the server's pg_wal file.
 *
 * The end position is the last byte before a segment boundary: a run stops exactly when that
 * segment completes (spec §3.5: the rest of the message is dropped), so the result does not
 * depend on how the walsender happened to cut its messages, and holds no .partial at all.
 *
 * The kill moments come from a seeded generator: WAL_E2E_SEED repeats a failing run.
 */

const VERSION = suiteVersion(18);
const SEED = Number(process.env.WAL_E2E_SEED ?? 20261122);
const VARIANTS = [
  { label: 'none', compress: undefined, suffix: '', kills: 16 },
  { label: 'gzip', compress: 'gzip', suffix: '.gz', kills: 8 },
  { label: 'lz4', compress: 'lz4', suffix: '.lz4', kills: 8 },
] as const;
const SEGMENTS = 6;

describe(`resume after kill -9 on PostgreSQL ${VERSION} (seed ${SEED})`, () => {
  const suite = useSuiteServer({ version: VERSION, prefix: 'kill', table: 'churn' });

  it.each(VARIANTS)(
    '-Z $label: ends with the directory of an uninterrupted run after $kills SIGKILLs',
    async ({ compress, suffix, kills: KILLS }) => {
      const random = seededRandom(SEED + KILLS + suffix.length);
      const { cluster } = suite;
      const compression = compress === undefined ? [] : ['--compress', compress];
      const reference = suite.directory(`reference${suffix}`);
      const resumed = suite.directory(`resumed${suffix}`);

      // A fresh segment, and nothing written until both receivers have started in it.
      await switchWal(cluster);
      const start = segmentStartOf(await flushLsn(cluster), MEGABYTE);
      const startName = walFileNameOf(1, start, MEGABYTE);
      const endLsn = start + BigInt(SEGMENTS * MEGABYTE) - 1n;
      const endText = lsnToText(endLsn);

      const uninterrupted = startReceive(cluster, [
        '--directory',
        reference,
        ...compression,
        '--verbose',
        '--endpos',
        endText,
        '--no-loop',
      ]);
      let current: RunningProcess = startReceive(cluster, [
        '--directory',
        resumed,
        ...compression,
        '--verbose',
      ]);
      await uninterrupted.waitForStderr(/starting log streaming at/);
      await current.waitForStderr(/starting log streaming at/);
      // A segment file is opened with the first WAL that arrives.
      await generateWal(cluster, 'churn', 1024);
      expect(await waitForFile(reference, /\.partial$/)).toBe(`${startName}${suffix}.partial`);
      expect(await waitForFile(resumed, /\.partial$/)).toBe(`${startName}${suffix}.partial`);

      // While the kills go on, the server writes WAL at a steady pace, but stops two segments short
      // of the end: a receiver without --endpos must not run past the range being compared.
      const killingCap = endLsn - BigInt(2 * MEGABYTE);
      let killing = true;
      const generator = (async () => {
        while (killing && (await insertLsn(cluster)) < killingCap) {
          await generateWal(cluster, 'churn', 96 * 1024);
          await sleep(250);
        }
      })();

      const kills: string[] = [];
      try {
        for (let kill = 0; kill < KILLS; kill++) {
          await sleep(50 + Math.floor(random() * 500));
          const outcome = await current.killHard();
          // A process that ended by itself before the kill is a failure worth seeing.
          expect(outcome.signal, describeRun(outcome)).toBe('SIGKILL');
          kills.push(listFiles(resumed).join(' '));
          current = startReceive(cluster, ['--directory', resumed, ...compression, '--verbose']);
          // Mostly kill while streaming; sometimes before the new process has even connected.
          if (random() < 0.3) continue;
          await current.waitForStderr(/starting log streaming/);
        }
      } finally {
        killing = false;
        await generator;
      }
      await current.killHard();
      // Now the rest of the range, for the final run and the uninterrupted one.
      while ((await insertLsn(cluster)) <= endLsn + 64n * 1024n)
        await generateWal(cluster, 'churn', 256 * 1024);

      const final = await runReceive(cluster, [
        '--directory',
        resumed,
        ...compression,
        '--endpos',
        endText,
        '--no-loop',
      ]);
      expect(final.code, `${describeRun(final)}\nafter kills, the directory held:\n${kills.join('\n')}`).toBe(
        0,
      );
      const reference_ = await uninterrupted.wait(60_000);
      expect(reference_.code, describeRun(reference_)).toBe(0);

      const expected = Array.from({ length: SEGMENTS }, (_, index) =>
        walFileNameOf(1, start + BigInt(index * MEGABYTE), MEGABYTE),
      );
      expect(listFiles(reference)).toEqual(expected.map((name) => `${name}${suffix}`));
      expect(compareDirectoriesDecompressed(reference, resumed)).toEqual([]);
      if (compress === undefined) expect(compareDirectories(reference, resumed)).toEqual([]);
      const { compared, differences } = compareDecompressedWithPgWal(resumed, cluster.pgWalDir);
      expect(differences).toEqual([]);
      expect(compared).toEqual(expected);
    },
    120_000,
  );
});
