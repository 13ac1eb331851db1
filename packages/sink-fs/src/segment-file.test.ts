import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CompressionMethod, resolveCompression } from './compression/index.js';
import { COALESCE_BELOW, SegmentFile } from './segment-file.js';
import { removeDirectory, SEGMENT, SEGMENT_SIZE, temporaryDirectory, wal } from './testing/sink-test-kit.js';

let directory: string;
beforeEach(async () => {
  directory = await temporaryDirectory('sink-segment-');
});
afterEach(async () => {
  await removeDirectory(directory);
});

function openSegment(method: CompressionMethod, blockingWrites: boolean): Promise<SegmentFile> {
  return SegmentFile.open({
    directory,
    timeline: 1,
    segmentNumber: 1n,
    segmentSize: SEGMENT_SIZE,
    compression: resolveCompression({ method }),
    sync: true,
    fileMode: 0o600,
    padding: 'extend',
    blockingWrites,
  });
}

describe('SegmentFile: the writer chosen at open', () => {
  it('with blocking writes, returns no promise from any write or sync: staged, past the staging buffer, large', async () => {
    const segment = await openSegment('none', true);
    expect(segment.atOnce).toBe(true);
    const sizes = [512, 512, 8000, 15_000, 15_000, 15_000, 15_000, COALESCE_BELOW, 200_000, 700];
    let position = 0;
    for (const size of sizes) {
      expect(segment.write(wal(SEGMENT + BigInt(position), size))).toBeUndefined();
      position += size;
    }
    expect(segment.sync()).toBeUndefined();
    const onDisk = await readFile(join(directory, `${segment.partialName}`));
    expect(onDisk.subarray(0, position).equals(wal(SEGMENT, position))).toBe(true);
    expect(await segment.close()).toBe('partial');
    expect(segment.atOnce).toBe(false);
  });

  it.each([
    { method: 'none', blockingWrites: false },
    { method: 'gzip', blockingWrites: true },
  ] as const)(
    'compression $method, blockingWrites $blockingWrites: does not work at once, and a large write is a promise',
    async ({ method, blockingWrites }) => {
      const segment = await openSegment(method, blockingWrites);
      expect(segment.atOnce).toBe(false);
      const written = segment.write(wal(SEGMENT, COALESCE_BELOW));
      expect(written).toBeInstanceOf(Promise);
      await written;
      expect(segment.position).toBe(COALESCE_BELOW);
      await segment.close();
    },
  );
});
