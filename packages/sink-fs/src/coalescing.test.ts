import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { walFileName } from '@wal/protocol';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DirectorySink } from './directory-sink.js';
import {
  decoders,
  removeDirectory,
  SEGMENT,
  SEGMENT_SIZE,
  SYSTEM_ID,
  suffixes,
  temporaryDirectory,
  wal,
} from './testing/sink-test-kit.js';

const name = (segmentNumber: bigint) => walFileName(1, segmentNumber, SEGMENT_SIZE);

afterEach(() => {
  vi.useRealTimers();
});

describe('write sizes: small writes are coalesced, large ones written through', () => {
  it.each(['none', 'gzip', 'lz4'] as const)(
    '%s: any sequence of write sizes gives the same segment files',
    async (method) => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.oneof(fc.integer({ min: 1, max: 600 }), fc.integer({ min: 1, max: 70_000 })), {
            minLength: 1,
            maxLength: 60,
          }),
          async (sizes) => {
            const directory = await temporaryDirectory('sink-coalesce-');
            try {
              const sink = new DirectorySink({ directory, sync: false, compression: { method } });
              await sink.prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE });
              let lsn = SEGMENT;
              // Cycle through the sizes until a segment and a bit are written.
              for (let index = 0; lsn < 2n * SEGMENT + 100n; index += 1) {
                const length = sizes[index % sizes.length]!;
                await sink.write(1, lsn, wal(lsn, length));
                lsn += BigInt(length);
              }
              expect(await sink.flush()).toBe(lsn);
              await sink.close();
              const complete = decoders[method](await readFile(join(directory, name(1n) + suffixes[method])));
              expect(complete.equals(wal(SEGMENT, SEGMENT_SIZE))).toBe(true);
              const partial = decoders[method](
                await readFile(join(directory, `${name(2n)}${suffixes[method]}.partial`)),
              );
              const written = Number(lsn - 2n * SEGMENT);
              expect(partial.subarray(0, written).equals(wal(2n * SEGMENT, written))).toBe(true);
            } finally {
              await removeDirectory(directory);
            }
          },
        ),
        { numRuns: method === 'none' ? 15 : 6 },
      );
    },
    60_000,
  );

  it('hands staged bytes to the file soon after the last write, without flush()', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const directory = await temporaryDirectory('sink-coalesce-');
    try {
      const sink = new DirectorySink({ directory, sync: false });
      await sink.prepare({ systemId: SYSTEM_ID, segmentSize: SEGMENT_SIZE });
      await sink.write(1, SEGMENT, wal(SEGMENT, 300));
      const path = join(directory, `${name(1n)}.partial`);
      expect((await readFile(path)).subarray(0, 300).every((byte) => byte === 0)).toBe(true);
      vi.runOnlyPendingTimers();
      await sink.hasHistoryFile(2); // queued behind the background write
      expect((await readFile(path)).subarray(0, 300).equals(wal(SEGMENT, 300))).toBe(true);
      expect(sink.durableLsn).toBe(0n); // written, not yet durable
      await sink.close();
    } finally {
      await removeDirectory(directory);
    }
  });
});
