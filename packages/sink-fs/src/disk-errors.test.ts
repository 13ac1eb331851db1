import { execFileSync } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { walFileName } from '@wal/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { DirectorySink } from './directory-sink.js';
import { SinkError } from './errors.js';
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

/**
 * Real ENOSPC and EROFS from a small tmpfs (needs root and a kernel that lets this sandbox mount;
 * skipped, with the reason in the title, where mounting is not allowed).
 */
const mountPoint = await temporaryDirectory('sink-fs-tmpfs-');
const canMount = (() => {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mountPoint], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const name = (segmentNumber: bigint, suffix = '') => walFileName(1, segmentNumber, SEGMENT_SIZE) + suffix;

afterAll(async () => {
  if (canMount) execFileSync('umount', ['-l', mountPoint]);
  await removeDirectory(mountPoint);
});

async function clean() {
  for (const entry of await sortedNames(mountPoint)) await rm(join(mountPoint, entry), { recursive: true });
}

describe.skipIf(!canMount)('DirectorySink on a full or read-only file system (3 MiB tmpfs)', () => {
  it('with zero padding: reports ENOSPC while padding a new segment as WAL_ERR_SINK_DISK_FULL and loses nothing completed', async () => {
    await clean();
    const sink = new DirectorySink({ directory: mountPoint, padding: 'zeros' });
    await sink.prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE });
    await writeRange(sink, SEGMENT, 3n * SEGMENT);
    await writeFile(join(mountPoint, 'filler'), Buffer.alloc(SEGMENT_SIZE / 2));
    const error = await writeRange(sink, 3n * SEGMENT, 4n * SEGMENT).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SinkError);
    expect((error as SinkError).code).toBe('WAL_ERR_SINK_DISK_FULL');
    expect((error as SinkError).retryable).toBe(true);
    // pg_receivewal's words: it pads while opening the file, and so fails there.
    expect((error as SinkError).message).toBe(
      `could not open write-ahead log file "${name(3n, '.partial')}": No space left on device`,
    );
    // Completed segments intact; the half-padded temporary file was removed to give space back.
    expect(await sortedNames(mountPoint)).toEqual([name(1n), name(2n), 'filler']);
    expect((await readFile(join(mountPoint, name(2n)))).equals(wal(2n * SEGMENT, SEGMENT_SIZE))).toBe(true);
    expect(sink.durableLsn).toBe(3n * SEGMENT);
    expect(await sink.resumePoint()).toEqual({ lsn: 3n * SEGMENT, timeline: 1 });

    // Space freed (an archive cleanup): the same sink carries on from the segment start.
    await rm(join(mountPoint, name(1n)));
    await writeRange(sink, 3n * SEGMENT, 3n * SEGMENT + 1000n);
    await sink.close();
    expect(await sortedNames(mountPoint)).toEqual([name(2n), name(3n, '.partial'), 'filler']);
  });

  it.each([false, true])(
    'with extended files (the default), blockingWrites %s: reports ENOSPC in the middle of a segment and keeps completed ones',
    async (blockingWrites) => {
      await clean();
      const sink = new DirectorySink({ directory: mountPoint, blockingWrites });
      await sink.prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE });
      await writeRange(sink, SEGMENT, 2n * SEGMENT);
      // Room for about half of the next segment: its file opens at full (sparse) size, and the WAL
      // written into it runs out of space halfway.
      const free = Number(
        execFileSync('df', ['-B1', '--output=avail', mountPoint]).toString().split('\n')[1],
      );
      await writeFile(join(mountPoint, 'filler'), Buffer.alloc(Math.max(0, free - SEGMENT_SIZE / 2)));
      const error = await writeRange(sink, 2n * SEGMENT, 3n * SEGMENT).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SinkError);
      expect((error as SinkError).code).toBe('WAL_ERR_SINK_DISK_FULL');
      expect((error as SinkError).message).toMatch(/: No space left on device$/);
      expect((await readFile(join(mountPoint, name(1n)))).equals(wal(SEGMENT, SEGMENT_SIZE))).toBe(true);
      expect(sink.durableLsn).toBe(2n * SEGMENT);
      expect(await sink.resumePoint()).toEqual({ lsn: 2n * SEGMENT, timeline: 1 });
      await sink.close().catch(() => {});
    },
  );

  it('writeAtOnce: throws ENOSPC as WAL_ERR_SINK_DISK_FULL, abandons the segment and keeps completed ones', async () => {
    await clean();
    const sink = new DirectorySink({ directory: mountPoint, blockingWrites: true });
    await sink.prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE });
    await writeRange(sink, SEGMENT, 2n * SEGMENT + 1000n);
    const free = Number(execFileSync('df', ['-B1', '--output=avail', mountPoint]).toString().split('\n')[1]);
    await writeFile(join(mountPoint, 'filler'), Buffer.alloc(Math.max(0, free - SEGMENT_SIZE / 2)));
    let lsn = 2n * SEGMENT + 1000n;
    let thrown: unknown;
    while (thrown === undefined && lsn < 3n * SEGMENT - 65_536n) {
      try {
        expect(sink.writeAtOnce(1, lsn, wal(lsn, 65_536))).toBe(true);
        lsn += 65_536n;
      } catch (error) {
        thrown = error;
      }
    }
    expect(thrown).toBeInstanceOf(SinkError);
    expect((thrown as SinkError).code).toBe('WAL_ERR_SINK_DISK_FULL');
    expect((thrown as SinkError).message).toContain(name(2n, '.partial'));
    // The segment is abandoned: nothing more goes into it, at once or queued.
    expect(sink.writeAtOnce(1, lsn, wal(lsn, 100))).toBe(false);
    const next = await sink.write(1, lsn, wal(lsn, 100)).catch((caught: unknown) => caught);
    expect((next as SinkError).code).toBe('WAL_ERR_SINK_OUT_OF_ORDER');
    expect(sink.durableLsn).toBe(2n * SEGMENT);
    expect((await readFile(join(mountPoint, name(1n)))).equals(wal(SEGMENT, SEGMENT_SIZE))).toBe(true);
    expect(await sink.resumePoint()).toEqual({ lsn: 2n * SEGMENT, timeline: 1 });
    await sink.close();
  });

  it('reports ENOSPC in the middle of a compressed segment and keeps completed ones', async () => {
    await clean();
    const sink = new DirectorySink({ directory: mountPoint, compression: { method: 'gzip', level: 1 } });
    await sink.prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE });
    await writeRange(sink, SEGMENT, 2n * SEGMENT);
    const completeSize = (await readFile(join(mountPoint, name(1n, '.gz')))).length;
    // Leave room for about a third of the next compressed segment.
    const free = Number(execFileSync('df', ['-B1', '--output=avail', mountPoint]).toString().split('\n')[1]);
    await writeFile(join(mountPoint, 'filler'), Buffer.alloc(free - Math.floor(completeSize / 3)));
    const error = await writeRange(sink, 2n * SEGMENT, 3n * SEGMENT).catch((caught: unknown) => caught);
    expect((error as SinkError).code).toBe('WAL_ERR_SINK_DISK_FULL');
    expect(
      gunzipSync(await readFile(join(mountPoint, name(1n, '.gz')))).equals(wal(SEGMENT, SEGMENT_SIZE)),
    ).toBe(true);
    expect(sink.durableLsn).toBe(2n * SEGMENT);
    await sink.close();
  });

  it('reports a read-only file system as WAL_ERR_SINK_PERMISSION_DENIED', async () => {
    await clean();
    execFileSync('mount', ['-o', 'remount,ro', mountPoint]);
    try {
      const sink = new DirectorySink({ directory: mountPoint });
      await sink.prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE });
      const error = await sink.write(1, SEGMENT, wal(SEGMENT, 100)).catch((caught: unknown) => caught);
      expect((error as SinkError).code).toBe('WAL_ERR_SINK_PERMISSION_DENIED');
      expect((error as SinkError).message).toMatch(/: Read-only file system$/);
      expect((error as SinkError).advice).toMatch(/read-only/);
      const history = await sink.writeHistoryFile(2, Buffer.from('x')).catch((caught: unknown) => caught);
      expect((history as SinkError).code).toBe('WAL_ERR_SINK_PERMISSION_DENIED');
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', mountPoint]);
    }
  });
});
