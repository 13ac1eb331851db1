import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { walFileName } from '@wal/protocol';
import { compressFrameSync } from 'lz4-napi';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { zstdDecompressFactory } from './compression/options.js';
import { SinkError } from './errors.js';
import { scanDirectory } from './scan.js';

const MiB = 1024 * 1024;
const segmentSize = MiB;
let directory: string;

beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'sink-scan-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** `name(tli, segno)` = the 24-hex name for 1 MiB segments. */
const name = (timeline: number, segmentNumber: number) =>
  walFileName(timeline, BigInt(segmentNumber), segmentSize);

async function file(fileName: string, size = segmentSize): Promise<void> {
  const path = join(directory, fileName);
  await writeFile(path, '');
  await truncate(path, size);
}

const gzipOf = (size: number) => gzipSync(Buffer.alloc(size));
const lz4Of = (size: number) => compressFrameSync(Buffer.alloc(size));

async function scan(options: { checkAllFiles?: boolean } = {}) {
  const warnings: string[] = [];
  const result = await scanDirectory(directory, segmentSize, {
    ...options,
    onWarning: (m) => warnings.push(m),
  });
  return { ...result, warnings };
}

describe('scanDirectory (FindStreamingStart rules)', () => {
  it('finds nothing in an empty directory', async () => {
    expect(await scan()).toEqual({ newest: undefined, resumePoint: undefined, warnings: [] });
  });

  it.each([
    {
      title: 'a complete segment: resume at the next segment',
      files: [[name(1, 3)]],
      expected: { lsn: 4n * BigInt(MiB), timeline: 1 },
    },
    {
      title: 'a partial segment: resume at its start',
      files: [[name(1, 3)], [`${name(1, 4)}.partial`]],
      expected: { lsn: 4n * BigInt(MiB), timeline: 1 },
    },
    {
      title: 'the highest segment wins over a higher timeline',
      files: [[name(2, 3)], [name(1, 5)]],
      expected: { lsn: 6n * BigInt(MiB), timeline: 1 },
    },
    {
      title: 'then the highest timeline',
      files: [[name(1, 5)], [`${name(2, 5)}.partial`]],
      expected: { lsn: 5n * BigInt(MiB), timeline: 2 },
    },
    {
      title: 'then complete over partial for the same segment and timeline',
      files: [[`${name(1, 5)}.partial`], [name(1, 5)]],
      expected: { lsn: 6n * BigInt(MiB), timeline: 1 },
    },
    {
      title: 'a partial of any size is not checked',
      files: [[name(1, 2)], [`${name(1, 3)}.partial`, 17]],
      expected: { lsn: 3n * BigInt(MiB), timeline: 1 },
    },
    {
      title: 'segment 0 is never chosen',
      files: [[name(1, 0)]],
      expected: undefined,
    },
    {
      title: 'other names are ignored: lowercase, history, tmp, backup history, junk',
      files: [
        [name(1, 2)],
        [name(1, 0xab).toLowerCase()],
        ['00000009.history', 10],
        [`${name(1, 9)}.partial.tmp`],
        [`${name(1, 9)}.00000028.backup`, 10],
        [`${name(1, 9)}.bz2`],
        [`X${name(1, 9)}`],
      ],
      expected: { lsn: 3n * BigInt(MiB), timeline: 1 },
    },
    {
      title: 'names in another log file (high part) order after the low part rolls over',
      files: [[walFileName(1, 4095n, segmentSize)], [walFileName(1, 4096n, segmentSize)]],
      expected: { lsn: 4097n * BigInt(MiB), timeline: 1 },
    },
  ])('$title', async ({ files, expected }) => {
    for (const [fileName, size] of files as [string, number?][]) await file(fileName, size);
    expect((await scan()).resumePoint).toEqual(expected);
  });

  it('skips a complete segment of the wrong size with pg_receivewal’s warning', async () => {
    await file(name(1, 2));
    await file(name(1, 3), 12345);
    const result = await scan();
    expect(result.resumePoint).toEqual({ lsn: 3n * BigInt(MiB), timeline: 1 });
    expect(result.warnings).toEqual([`segment file "${name(1, 3)}" has incorrect size 12345, skipping`]);
  });

  it('checks the gzip ISIZE trailer of complete .gz files', async () => {
    await writeFile(join(directory, `${name(1, 2)}.gz`), gzipOf(segmentSize));
    await writeFile(join(directory, `${name(1, 3)}.gz`), gzipOf(1000));
    await writeFile(join(directory, `${name(1, 4)}.gz.partial`), gzipOf(10));
    let result = await scan();
    expect(result.resumePoint).toEqual({ lsn: 4n * BigInt(MiB), timeline: 1 });
    expect(result.warnings).toEqual([]);
    await rm(join(directory, `${name(1, 4)}.gz.partial`));
    result = await scan();
    expect(result.resumePoint).toEqual({ lsn: 3n * BigInt(MiB), timeline: 1 });
    expect(result.warnings).toEqual([
      `compressed segment file "${name(1, 3)}.gz" has incorrect uncompressed size 1000, skipping`,
    ]);
  });

  it('decodes complete .lz4 files to count their size', async () => {
    await writeFile(join(directory, `${name(1, 2)}.lz4`), lz4Of(segmentSize));
    await writeFile(join(directory, `${name(1, 3)}.lz4`), lz4Of(segmentSize + 5));
    const result = await scan();
    expect(result.newest?.name).toBe(`${name(1, 2)}.lz4`);
    expect(result.resumePoint).toEqual({ lsn: 3n * BigInt(MiB), timeline: 1 });
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(
      new RegExp(
        `^compressed segment file "${name(1, 3)}.lz4" has incorrect uncompressed size \\d+, skipping$`,
      ),
    );
  });

  it('warns about older bad files only when asked to check all files, like pg_receivewal', async () => {
    await file(name(1, 2), 5);
    await file(name(1, 3));
    expect((await scan()).warnings).toEqual([]);
    const all = await scan({ checkAllFiles: true });
    expect(all.resumePoint).toEqual({ lsn: 4n * BigInt(MiB), timeline: 1 });
    expect(all.warnings).toEqual([`segment file "${name(1, 2)}" has incorrect size 5, skipping`]);
  });

  it('fails on a damaged complete .lz4 file, naming it', async () => {
    const damaged = lz4Of(segmentSize);
    damaged[0] = 0x00;
    await writeFile(join(directory, `${name(1, 2)}.lz4`), damaged);
    await expect(scan()).rejects.toMatchObject({
      code: 'WAL_ERR_SINK_BAD_FILE',
      message: expect.stringContaining(`could not decompress file "${name(1, 2)}.lz4"`),
    });
  });

  it('fails on a .gz file too short for a trailer', async () => {
    await writeFile(join(directory, `${name(1, 2)}.gz`), Buffer.from([0x1f, 0x8b]));
    await expect(scan()).rejects.toMatchObject({
      code: 'WAL_ERR_SINK_BAD_FILE',
      message: expect.stringContaining(`could not read compressed file "${name(1, 2)}.gz": read 0 of 4`),
    });
  });

  it.each([
    ['.gz', 'could not read compressed file'],
    ['.lz4', 'could not read file'],
  ])(
    'fails on a complete %s that is a directory in pg_receivewal’s words, with the path',
    async (suffix, words) => {
      await mkdir(join(directory, `${name(1, 2)}${suffix}`));
      await expect(scan()).rejects.toMatchObject({
        code: 'WAL_ERR_SINK_IO',
        message: `${words} "${join(directory, `${name(1, 2)}${suffix}`)}": Is a directory`,
      });
    },
  );

  it('accepts our .zst.partial without checking it', async () => {
    await writeFile(join(directory, `${name(1, 7)}.zst.partial`), Buffer.from('anything'));
    expect((await scan()).resumePoint).toEqual({ lsn: 7n * BigInt(MiB), timeline: 1 });
  });

  it.runIf(zstdDecompressFactory() === undefined)(
    'refuses to guess about a complete .zst file without zstd support',
    async () => {
      await writeFile(join(directory, `${name(1, 7)}.zst`), Buffer.from('anything'));
      const error = await scan().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SinkError);
      expect((error as SinkError).code).toBe('WAL_ERR_SINK_COMPRESSION_UNSUPPORTED');
      expect((error as SinkError).message).toContain(`cannot check file "${name(1, 7)}.zst"`);
    },
  );

  it('reports a missing directory', async () => {
    await expect(scanDirectory(join(directory, 'gone'), segmentSize)).rejects.toMatchObject({
      code: 'WAL_ERR_SINK_DIRECTORY_MISSING',
    });
  });
});
