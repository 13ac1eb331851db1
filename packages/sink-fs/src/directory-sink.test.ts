import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { walFileName } from '@wal/protocol';
import { compressFrameSync, decompressFrameSync } from 'lz4-napi';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectorySink, type DirectorySinkOptions } from './directory-sink.js';
import { SinkError } from './errors.js';
import { fakeWal } from './testing/fake-wal.js';
import {
  removeDirectory,
  SEGMENT,
  SEGMENT_SIZE,
  SYSTEM_ID,
  sortedNames,
  temporaryDirectory,
  wal,
  writeRange,
} from './testing/sink-test-kit.js';

const name = (segmentNumber: bigint, timeline = 1) => walFileName(timeline, segmentNumber, SEGMENT_SIZE);
const hasTool = (tool: string) => {
  try {
    execFileSync(tool, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

let directory: string;
beforeEach(async () => {
  directory = await temporaryDirectory('sink-fs-');
});
afterEach(async () => {
  await removeDirectory(directory);
});

async function preparedSink(options: Partial<DirectorySinkOptions> = {}, fileMode?: number) {
  const sink = new DirectorySink({ directory, sync: true, ...options });
  await sink.prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE, fileMode });
  return sink;
}

async function expectSinkError(promise: Promise<unknown>, code: string, message?: RegExp) {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(SinkError);
  expect((error as SinkError).code).toBe(code);
  if (message) expect((error as SinkError).message).toMatch(message);
  return error as SinkError;
}

describe('DirectorySink: uncompressed segments', () => {
  it('writes under .partial, padded with zeros, then renames at completion', async () => {
    const sink = await preparedSink();
    await writeRange(sink, SEGMENT, SEGMENT + 300_000n);
    expect(await sortedNames(directory)).toEqual([`${name(1n)}.partial`]);
    const partial = await readFile(join(directory, `${name(1n)}.partial`));
    expect(partial.length).toBe(SEGMENT_SIZE);
    expect(partial.subarray(0, 300_000).equals(wal(SEGMENT, 300_000))).toBe(true);
    expect(partial.subarray(300_000).every((byte) => byte === 0)).toBe(true);
    expect(sink.durableLsn).toBe(0n);

    await writeRange(sink, SEGMENT + 300_000n, 2n * SEGMENT);
    expect(await sortedNames(directory)).toEqual([name(1n)]);
    expect((await readFile(join(directory, name(1n)))).equals(wal(SEGMENT, SEGMENT_SIZE))).toBe(true);
    expect(sink.durableLsn).toBe(2n * SEGMENT);
    await sink.close();
  });

  it.each([
    { blockingWrites: false, padding: 'extend' as const },
    { blockingWrites: true, padding: 'extend' as const },
    { blockingWrites: true, padding: 'zeros' as const },
  ])(
    'writes the same bytes with blockingWrites $blockingWrites and padding $padding, without staging in between',
    async (options) => {
      const sink = await preparedSink(options);
      // Large and small writes (small ones are staged), crossing a segment boundary.
      await writeRange(sink, SEGMENT, 2n * SEGMENT + 70_000n, { chunk: 128 * 1024 + 7 });
      await writeRange(sink, 2n * SEGMENT + 70_000n, 2n * SEGMENT + 100_000n, { chunk: 1000 });
      await sink.close();
      expect(await sortedNames(directory)).toEqual([name(1n), `${name(2n)}.partial`]);
      expect((await readFile(join(directory, name(1n)))).equals(wal(SEGMENT, SEGMENT_SIZE))).toBe(true);
      const partial = await readFile(join(directory, `${name(2n)}.partial`));
      expect(partial.length).toBe(SEGMENT_SIZE);
      expect(partial.subarray(0, 100_000).equals(wal(2n * SEGMENT, 100_000))).toBe(true);
      expect(partial.subarray(100_000).every((byte) => byte === 0)).toBe(true);
    },
  );

  it('with blockingWrites, writes and flushes inside the open segment at once, and waits behind a queued call', async () => {
    const sink = await preparedSink({ blockingWrites: true });
    await sink.write(1, SEGMENT, wal(SEGMENT, 100_000)); // opens the segment (queued: it awaits the open)
    const partial = join(directory, `${name(1n)}.partial`);
    // Read synchronously: no await between the call and the read, so no queued work can run.
    const onDisk = (from: number, length: number) => readFileSync(partial).subarray(from, from + length);

    // Nothing queued: the pwrite and the fsync are done when the calls return, before any await.
    const written = sink.write(1, SEGMENT + 100_000n, wal(SEGMENT + 100_000n, 50_000));
    expect(onDisk(100_000, 50_000).equals(wal(SEGMENT + 100_000n, 50_000))).toBe(true);
    const flushed = sink.flush();
    expect(sink.durableLsn).toBe(SEGMENT + 150_000n);
    await written;
    expect(await flushed).toBe(SEGMENT + 150_000n);

    // A queued call is running (a directory scan): the next write waits for it, in order.
    const scan = sink.resumePoint();
    const queued = sink.write(1, SEGMENT + 150_000n, wal(SEGMENT + 150_000n, 50_000));
    const flushedLater = sink.flush();
    expect(onDisk(150_000, 50_000).equals(wal(SEGMENT + 150_000n, 50_000))).toBe(false);
    expect(sink.durableLsn).toBe(SEGMENT + 150_000n);
    await Promise.all([scan, queued]);
    expect(await flushedLater).toBe(SEGMENT + 200_000n);
    expect((await readFile(partial)).subarray(0, 200_000).equals(wal(SEGMENT, 200_000))).toBe(true);
    await sink.close();
  });

  it('without blockingWrites, declines writeAtOnce, and flushAtOnce while a segment is open', async () => {
    const sink = await preparedSink();
    expect(sink.flushAtOnce()).toBe(0n);
    expect(sink.writeAtOnce(1, SEGMENT, wal(SEGMENT, 100))).toBe(false);
    await sink.write(1, SEGMENT, wal(SEGMENT, 100_000));
    expect(sink.writeAtOnce(1, SEGMENT + 100_000n, wal(SEGMENT + 100_000n, 100))).toBe(false);
    expect(sink.flushAtOnce()).toBeUndefined();
    expect(await sink.flush()).toBe(SEGMENT + 100_000n);
    await sink.close();
  });

  it.each(['gzip', 'lz4'] as const)(
    'with blockingWrites and %s, declines writeAtOnce, and flushAtOnce while a segment is open',
    async (method) => {
      const sink = await preparedSink({ blockingWrites: true, compression: { method } });
      await sink.write(1, SEGMENT, wal(SEGMENT, 100_000));
      expect(sink.writeAtOnce(1, SEGMENT + 100_000n, wal(SEGMENT + 100_000n, 100))).toBe(false);
      expect(sink.flushAtOnce()).toBeUndefined();
      expect(sink.durableLsn).toBe(0n);
      expect(await sink.flush()).toBe(SEGMENT + 100_000n);
      await sink.close();
      const partial = await readFile(
        join(directory, `${name(1n)}.${method === 'gzip' ? 'gz' : 'lz4'}.partial`),
      );
      const decoded = method === 'gzip' ? gunzipSync(partial) : decompressFrameSync(partial);
      expect(decoded.equals(wal(SEGMENT, 100_000))).toBe(true);
    },
  );

  it('writeAtOnce and flushAtOnce: done before they return inside an open blocking segment, declined otherwise', async () => {
    const partial = join(directory, `${name(1n)}.partial`);
    const onDisk = (from: number, length: number) => readFileSync(partial).subarray(from, from + length);
    const sink = await preparedSink({ blockingWrites: true });
    // No segment open: a segment start needs the queued path (the file is created asynchronously).
    expect(sink.writeAtOnce(1, SEGMENT, wal(SEGMENT, 100_000))).toBe(false);
    expect(sink.flushAtOnce()).toBe(0n);
    await sink.write(1, SEGMENT, wal(SEGMENT, 100_000));

    // Inside the open segment: the bytes are in the file when the call returns (a large write
    // directly, a small one once flushAtOnce writes out what was staged), and durable after the flush.
    expect(sink.writeAtOnce(1, SEGMENT + 100_000n, wal(SEGMENT + 100_000n, 50_000))).toBe(true);
    expect(onDisk(100_000, 50_000).equals(wal(SEGMENT + 100_000n, 50_000))).toBe(true);
    expect(sink.writeAtOnce(1, SEGMENT + 150_000n, wal(SEGMENT + 150_000n, 300))).toBe(true);
    expect(sink.durableLsn).toBe(0n);
    expect(sink.flushAtOnce()).toBe(SEGMENT + 150_300n);
    expect(sink.durableLsn).toBe(SEGMENT + 150_300n);
    expect(onDisk(0, 150_300).equals(wal(SEGMENT, 150_300))).toBe(true);

    // Declined, with nothing written: another position, another timeline, a write that would end
    // the segment (completion renames the file: queued path), and anything while a call is queued.
    const end = SEGMENT + 150_300n;
    expect(sink.writeAtOnce(1, end + 1n, wal(end + 1n, 10))).toBe(false);
    expect(sink.writeAtOnce(2, end, wal(end, 10))).toBe(false);
    expect(sink.writeAtOnce(1, end, wal(end, SEGMENT_SIZE - 150_300))).toBe(false);
    const scan = sink.resumePoint();
    expect(sink.writeAtOnce(1, end, wal(end, 10))).toBe(false);
    expect(sink.flushAtOnce()).toBeUndefined();
    await scan;
    expect(
      readFileSync(partial)
        .subarray(150_300)
        .every((byte) => byte === 0),
    ).toBe(true);

    await sink.write(1, end, wal(end, SEGMENT_SIZE - 150_300));
    expect(await sortedNames(directory)).toEqual([name(1n)]);
    expect((await readFile(join(directory, name(1n)))).equals(wal(SEGMENT, SEGMENT_SIZE))).toBe(true);
    await sink.close();
  });

  it('rejects an unknown padding', () => {
    expect(() => new DirectorySink({ directory, padding: 'holes' as never })).toThrow(
      /invalid padding "holes"/,
    );
  });

  it('splits one write that crosses segment boundaries', async () => {
    const sink = await preparedSink();
    const data = wal(SEGMENT, SEGMENT_SIZE * 2 + 1000);
    await sink.write(1, SEGMENT, data);
    expect(await sortedNames(directory)).toEqual([name(1n), name(2n), `${name(3n)}.partial`]);
    expect(
      (await readFile(join(directory, name(2n)))).equals(data.subarray(SEGMENT_SIZE, 2 * SEGMENT_SIZE)),
    ).toBe(true);
    expect(sink.durableLsn).toBe(3n * SEGMENT);
    expect(await sink.flush()).toBe(3n * SEGMENT + 1000n);
    await sink.close();
    const partial = await readFile(join(directory, `${name(3n)}.partial`));
    expect(partial.subarray(0, 1000).equals(data.subarray(2 * SEGMENT_SIZE))).toBe(true);
  });

  it('keeps the .partial at close and resumes from its segment start in a new run', async () => {
    const notices: string[] = [];
    let sink = await preparedSink({ onNotice: (message) => notices.push(message) });
    await writeRange(sink, SEGMENT, 2n * SEGMENT + 5000n);
    await sink.close();
    expect(sink.durableLsn).toBe(2n * SEGMENT + 5000n);
    expect(notices).toEqual([`not renaming "${name(2n)}.partial", segment is not complete`]);

    // Closed after a failure: kept as silently as pg_receivewal's error path keeps it.
    notices.length = 0;
    sink = await preparedSink({ onNotice: (message) => notices.push(message) });
    await writeRange(sink, 2n * SEGMENT, 2n * SEGMENT + 6000n);
    await sink.close('failure');
    expect(notices).toEqual([]);

    sink = await preparedSink();
    const resume = await sink.resumePoint();
    expect(resume).toEqual({ lsn: 2n * SEGMENT, timeline: 1 });
    expect(sink.durableLsn).toBe(2n * SEGMENT);
    await writeRange(sink, resume!.lsn, 3n * SEGMENT + 10n);
    await sink.close();
    expect(await sortedNames(directory)).toEqual([name(1n), name(2n), `${name(3n)}.partial`]);
    expect((await readFile(join(directory, name(2n)))).equals(wal(2n * SEGMENT, SEGMENT_SIZE))).toBe(true);
  });

  it('reopens an existing full-size .partial in place', async () => {
    const path = join(directory, `${name(1n)}.partial`);
    const previous = wal(SEGMENT, SEGMENT_SIZE);
    await writeFile(path, previous);
    const sink = await preparedSink();
    await sink.write(1, SEGMENT, wal(SEGMENT, 100));
    await sink.close();
    // Untouched bytes beyond the new position stay (same timeline, same segment: same WAL).
    expect((await readFile(path)).equals(previous)).toBe(true);
  });

  it.each([
    ['empty (treated as new)', 0],
    ['short, as a pg_receivewal killed while padding leaves it', 123_456],
    ['longer than a segment', SEGMENT_SIZE + 1],
  ])('replaces a .partial that is %s with a padded one', async (_title, size) => {
    const path = join(directory, `${name(1n)}.partial`);
    await writeFile(path, Buffer.alloc(size, 0xee));
    const sink = await preparedSink();
    await sink.write(1, SEGMENT, wal(SEGMENT, 100));
    await sink.close();
    const content = await readFile(path);
    expect(content.length).toBe(SEGMENT_SIZE);
    expect(content.subarray(0, 100).equals(wal(SEGMENT, 100))).toBe(true);
    expect(content.subarray(100).every((byte) => byte === 0)).toBe(true);
  });

  it('removes temporary files a killed run left behind', async () => {
    await writeFile(join(directory, `${name(4n)}.partial.tmp`), 'half padded');
    await writeFile(join(directory, '00000002.history.tmp'), 'half written');
    await writeFile(join(directory, 'unrelated.tmp'), 'not ours');
    await preparedSink();
    expect(await sortedNames(directory)).toEqual(['unrelated.tmp']);
  });

  it('works without fsync (--no-sync) and still advances durableLsn at completion', async () => {
    const sink = await preparedSink({ sync: false });
    await writeRange(sink, SEGMENT, 2n * SEGMENT + 1n);
    expect(sink.durableLsn).toBe(2n * SEGMENT);
    expect(await sink.flush()).toBe(2n * SEGMENT + 1n);
    await sink.close();
    expect(await sortedNames(directory)).toEqual([name(1n), `${name(2n)}.partial`]);
  });

  it('starts a new timeline after close() at the same segment, leaving the old .partial', async () => {
    const sink = await preparedSink();
    await writeRange(sink, SEGMENT, SEGMENT + 4096n);
    await sink.close();
    await writeRange(sink, SEGMENT, 2n * SEGMENT + 8192n, { timeline: 2 });
    await sink.close();
    expect(await sortedNames(directory)).toEqual([
      `${name(1n)}.partial`,
      name(1n, 2),
      `${name(2n, 2)}.partial`,
    ]);
  });

  it('closes the open segment when a write restarts at a segment start', async () => {
    const sink = await preparedSink();
    await writeRange(sink, SEGMENT, SEGMENT + 4096n);
    await writeRange(sink, SEGMENT, 2n * SEGMENT);
    expect(await sortedNames(directory)).toEqual([name(1n)]);
  });
});

describe('DirectorySink: file modes', () => {
  async function modeOf(fileName: string) {
    return (await stat(join(directory, fileName))).mode & 0o777;
  }

  it.each([
    ['owner-only data directory (0700)', 0o700, 0o600],
    ['group-readable data directory (0750)', 0o750, 0o640],
    ['no data_directory_mode', undefined, 0o600],
  ])(
    'creates files for a %s with the right mode, whatever the umask',
    async (_title, dataDirectoryMode, expected) => {
      const previousUmask = process.umask(0o077);
      try {
        const sink = await preparedSink({}, dataDirectoryMode);
        await writeRange(sink, SEGMENT, 2n * SEGMENT + 10n);
        await sink.writeHistoryFile(2, Buffer.from('1\t0/1000000\tno recovery target specified\n'));
        await sink.close();
        expect(await modeOf(name(1n))).toBe(expected);
        expect(await modeOf(`${name(2n)}.partial`)).toBe(expected);
        expect(await modeOf('00000002.history')).toBe(expected);
      } finally {
        process.umask(previousUmask);
      }
    },
  );

  it('honours an explicit file mode and gives gzip files the same', async () => {
    const sink = await preparedSink({ fileMode: 0o640, compression: { method: 'gzip' } }, 0o700);
    await writeRange(sink, SEGMENT, SEGMENT + 10n);
    await sink.close();
    expect(await modeOf(`${name(1n)}.gz.partial`)).toBe(0o640);
  });
});

describe('DirectorySink: gzip', () => {
  it('writes .gz.partial, a complete gzip stream at every close, then .gz', async () => {
    const sink = await preparedSink({ compression: { method: 'gzip', level: 5 } });
    await writeRange(sink, SEGMENT, SEGMENT + 200_000n, { chunk: 8192 * 3 });
    await sink.close();
    const partial = await readFile(join(directory, `${name(1n)}.gz.partial`));
    expect(partial.subarray(0, 3).equals(Buffer.from([0x1f, 0x8b, 0x08]))).toBe(true);
    expect(partial[9]).toBe(3); // OS = Unix, as zlib's gzdopen writes
    expect(gunzipSync(partial).equals(wal(SEGMENT, 200_000))).toBe(true);
    expect(partial.readUInt32LE(partial.length - 4)).toBe(200_000); // ISIZE = bytes received

    const resumed = await preparedSink({ compression: { method: 'gzip', level: 5 } });
    expect(await resumed.resumePoint()).toEqual({ lsn: SEGMENT, timeline: 1 });
    await writeRange(resumed, SEGMENT, 2n * SEGMENT + 100n);
    await resumed.close();
    expect(await sortedNames(directory)).toEqual([`${name(1n)}.gz`, `${name(2n)}.gz.partial`]);
    const complete = await readFile(join(directory, `${name(1n)}.gz`));
    expect(gunzipSync(complete).equals(wal(SEGMENT, SEGMENT_SIZE))).toBe(true);
    expect(complete.readUInt32LE(complete.length - 4)).toBe(SEGMENT_SIZE);
    if (hasTool('gzip')) {
      execFileSync('gzip', [
        '-t',
        join(directory, `${name(1n)}.gz`),
        join(directory, `${name(2n)}.gz.partial`),
      ]);
    }
    const again = await preparedSink({ compression: { method: 'gzip' } });
    expect(await again.resumePoint()).toEqual({ lsn: 2n * SEGMENT, timeline: 1 });
  });

  it('makes flushed bytes decodable on disk before close', async () => {
    const sink = await preparedSink({ compression: { method: 'gzip' } });
    await writeRange(sink, SEGMENT, SEGMENT + 50_000n, { chunk: 7000 });
    expect(await sink.flush()).toBe(SEGMENT + 50_000n);
    const onDisk = await readFile(join(directory, `${name(1n)}.gz.partial`));
    const decoded = gunzipSync(onDisk, { finishFlush: constants.Z_SYNC_FLUSH });
    expect(decoded.equals(wal(SEGMENT, 50_000))).toBe(true);
    await sink.close();
  });

  it('never keeps stale bytes of an earlier, longer .gz.partial', async () => {
    const path = join(directory, `${name(1n)}.gz.partial`);
    await writeFile(path, Buffer.concat([gzipSync(Buffer.alloc(10)), Buffer.alloc(500_000, 0x55)]));
    const sink = await preparedSink({ compression: { method: 'gzip' } });
    await writeRange(sink, SEGMENT, SEGMENT + 1000n);
    await sink.close();
    const content = await readFile(path);
    expect(gunzipSync(content).equals(wal(SEGMENT, 1000))).toBe(true);
    if (hasTool('gzip')) execFileSync('gzip', ['-t', path]);
  });
});

describe('DirectorySink: lz4', () => {
  it('writes LZ4 frames that decode to the exact bytes, partial and complete', async () => {
    const sink = await preparedSink({ compression: { method: 'lz4' } });
    await writeRange(sink, SEGMENT, 2n * SEGMENT + 77_777n, { chunk: 100_000 });
    expect(await sink.flush()).toBe(2n * SEGMENT + 77_777n);
    await sink.close();
    expect(await sortedNames(directory)).toEqual([`${name(1n)}.lz4`, `${name(2n)}.lz4.partial`]);
    const complete = await readFile(join(directory, `${name(1n)}.lz4`));
    expect(decompressFrameSync(complete).equals(wal(SEGMENT, SEGMENT_SIZE))).toBe(true);
    const partial = await readFile(join(directory, `${name(2n)}.lz4.partial`));
    expect(decompressFrameSync(partial).equals(wal(2n * SEGMENT, 77_777))).toBe(true);
    if (hasTool('lz4')) execFileSync('lz4', ['-t', join(directory, `${name(1n)}.lz4`)]);
    const again = await preparedSink({ compression: { method: 'lz4' } });
    expect(await again.resumePoint()).toEqual({ lsn: 2n * SEGMENT, timeline: 1 });
  });
});

describe('DirectorySink: directory guard', () => {
  const otherSystem = 6_000_000_000_000_000_001n;

  it('refuses a directory holding WAL of another system identifier', async () => {
    await writeFile(
      join(directory, name(3n)),
      fakeWal(3n * SEGMENT, SEGMENT_SIZE, { systemId: otherSystem, segmentSize: SEGMENT_SIZE }),
    );
    const before = await sortedNames(directory);
    const sink = new DirectorySink({ directory });
    await expectSinkError(
      sink.prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE }),
      'WAL_ERR_SINK_MISMATCH',
      new RegExp(
        `another database system: "${name(3n)}" has system identifier ${otherSystem}, the server has ${SYSTEM_ID}`,
      ),
    );
    expect(await sortedNames(directory)).toEqual(before);
  });

  it('refuses a directory holding WAL of another segment size, even with names the size cannot parse', async () => {
    const bigSegments = 16 * SEGMENT_SIZE;
    // 00000001 00000000 000000FF: segment 255 of 16 MiB segments; a valid name for 1 MiB too.
    const header = fakeWal(255n * BigInt(bigSegments), 8192, {
      systemId: SYSTEM_ID,
      segmentSize: bigSegments,
    });
    await writeFile(join(directory, `${walFileName(1, 255n, bigSegments)}.partial`), header);
    const sink = new DirectorySink({ directory });
    await expectSinkError(
      sink.prepare({ systemId: SYSTEM_ID, segmentSize: 1024 * SEGMENT_SIZE }),
      'WAL_ERR_SINK_MISMATCH',
      /another segment size: .* has 16777216-byte segments, the server uses 1073741824/,
    );
  });

  it.each([
    ['gzip', (data: Buffer) => gzipSync(data), '.gz'],
    ['lz4', (data: Buffer) => compressFrameSync(data), '.lz4'],
  ] as const)('reads the header of %s-compressed segments', async (_method, compress, suffix) => {
    const data = fakeWal(2n * SEGMENT, SEGMENT_SIZE, { systemId: otherSystem, segmentSize: SEGMENT_SIZE });
    await writeFile(join(directory, `${name(2n)}${suffix}`), compress(data));
    await expectSinkError(
      new DirectorySink({ directory }).prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE }),
      'WAL_ERR_SINK_MISMATCH',
    );
    // The same data from our own system passes.
    await writeFile(join(directory, `${name(2n)}${suffix}`), compress(wal(2n * SEGMENT, SEGMENT_SIZE)));
    await new DirectorySink({ directory }).prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE });
  });

  it('passes over a directory under a segment name, leaving it to the resume scan', async () => {
    await writeFile(
      join(directory, name(2n)),
      fakeWal(2n * SEGMENT, SEGMENT_SIZE, { systemId: otherSystem, segmentSize: SEGMENT_SIZE }),
    );
    await mkdir(join(directory, `${name(3n)}.gz`));
    await expectSinkError(
      new DirectorySink({ directory }).prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE }),
      'WAL_ERR_SINK_MISMATCH',
    );
  });

  it('passes over a freshly padded (all zero) newest .partial to the newest real header', async () => {
    await writeFile(
      join(directory, name(2n)),
      fakeWal(2n * SEGMENT, SEGMENT_SIZE, { systemId: otherSystem, segmentSize: SEGMENT_SIZE }),
    );
    await writeFile(join(directory, `${name(3n)}.partial`), Buffer.alloc(SEGMENT_SIZE));
    await expectSinkError(
      new DirectorySink({ directory }).prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE }),
      'WAL_ERR_SINK_MISMATCH',
    );
  });

  it('accepts an empty directory and its own WAL', async () => {
    const sink = await preparedSink();
    await writeRange(sink, SEGMENT, 2n * SEGMENT + 10n);
    await sink.close();
    await preparedSink();
  });
});

describe('DirectorySink: history files', () => {
  const content = Buffer.from('1\t0/B00130\tno recovery target specified\n');

  it('writes history files uncompressed and atomically, even under gzip', async () => {
    const sink = await preparedSink({ compression: { method: 'gzip' } });
    expect(await sink.hasHistoryFile(2)).toBe(false);
    await sink.writeHistoryFile(2, content);
    expect(await sink.hasHistoryFile(2)).toBe(true);
    expect(await sortedNames(directory)).toEqual(['00000002.history']);
    expect((await readFile(join(directory, '00000002.history'))).equals(content)).toBe(true);
    // Rewriting replaces the whole file (no stale tail).
    await sink.writeHistoryFile(2, Buffer.from('short\n'));
    expect(await readFile(join(directory, '00000002.history'), 'utf8')).toBe('short\n');
    expect(await sortedNames(directory)).toEqual(['00000002.history']);
  });

  it('fails clearly and leaves no temporary file when the directory is gone', async () => {
    const sink = await preparedSink();
    await removeDirectory(directory);
    await expectSinkError(
      sink.writeHistoryFile(3, content),
      'WAL_ERR_SINK_DIRECTORY_MISSING',
      /00000003\.history/,
    );
    await mkdir(directory);
    expect(await sortedNames(directory)).toEqual([]);
  });
});

describe('DirectorySink: misuse and errors', () => {
  it.each([
    [{ directory: '' }, 'WAL_ERR_SINK_INVALID_OPTION', /no target directory specified/],
    [{ directory: '/tmp', fileMode: 0o1777 }, 'WAL_ERR_SINK_INVALID_OPTION', /invalid file mode/],
    [
      { directory: '/tmp', compression: { method: 'gzip', level: 12 } },
      'WAL_ERR_SINK_INVALID_OPTION',
      /between 1 and 9/,
    ],
  ] as const)('rejects bad options %j', (options, code, message) => {
    try {
      new DirectorySink(options as DirectorySinkOptions);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(SinkError);
      expect((error as SinkError).code).toBe(code);
      expect((error as SinkError).message).toMatch(message);
    }
  });

  it('rejects use before prepare()', async () => {
    const sink = new DirectorySink({ directory });
    await expectSinkError(sink.write(1, SEGMENT, Buffer.alloc(1)), 'WAL_ERR_SINK_NOT_PREPARED');
    await expectSinkError(sink.resumePoint(), 'WAL_ERR_SINK_NOT_PREPARED');
  });

  it('rejects an invalid segment size, a missing directory and a file instead of a directory', async () => {
    await expectSinkError(
      new DirectorySink({ directory }).prepare({ systemId: SYSTEM_ID, segmentSize: 1000 }),
      'WAL_ERR_SINK_INVALID_OPTION',
      /power of two/,
    );
    await expectSinkError(
      new DirectorySink({ directory: join(directory, 'missing') }).prepare({
        systemId: SYSTEM_ID,
        segmentSize: SEGMENT_SIZE,
      }),
      'WAL_ERR_SINK_DIRECTORY_MISSING',
      /could not open directory .*missing/,
    );
    await writeFile(join(directory, 'file'), 'x');
    await expectSinkError(
      new DirectorySink({ directory: join(directory, 'file') }).prepare({
        systemId: SYSTEM_ID,
        segmentSize: SEGMENT_SIZE,
      }),
      'WAL_ERR_SINK_DIRECTORY_MISSING',
      /not a directory/,
    );
  });

  it('requires the first write at a segment start and contiguous writes after it', async () => {
    const sink = await preparedSink();
    await expectSinkError(
      sink.write(1, SEGMENT + 8n, Buffer.alloc(8)),
      'WAL_ERR_SINK_OUT_OF_ORDER',
      /with no file open/,
    );
    await sink.write(1, SEGMENT, wal(SEGMENT, 8192));
    await expectSinkError(
      sink.write(1, SEGMENT + 16384n, Buffer.alloc(8)),
      'WAL_ERR_SINK_OUT_OF_ORDER',
      /got WAL data at 0\/104000 on timeline 1, expected 0\/102000/,
    );
    await sink.close();
  });

  it('reports a directory removed while a segment is open, at the rename', async () => {
    const sink = await preparedSink();
    await writeRange(sink, SEGMENT, SEGMENT + 1000n);
    await removeDirectory(directory);
    await expectSinkError(
      writeRange(sink, SEGMENT + 1000n, 2n * SEGMENT),
      'WAL_ERR_SINK_DIRECTORY_MISSING',
      /rename/,
    );
    await mkdir(directory);
  });

  it('serialises calls that are not awaited one by one', async () => {
    const sink = await preparedSink();
    const writes = [];
    for (let lsn = SEGMENT; lsn < 2n * SEGMENT; lsn += 65536n)
      writes.push(sink.write(1, lsn, wal(lsn, 65536)));
    await Promise.all(writes);
    expect((await readFile(join(directory, name(1n)))).equals(wal(SEGMENT, SEGMENT_SIZE))).toBe(true);
    await truncate(join(directory, name(1n)), 0);
  });
});
