import { readFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CompressionMethod } from '../compression/index.js';
import { removeDirectory, temporaryDirectory } from '../testing/sink-test-kit.js';
import { BlockingWriter } from './blocking-writer.js';
import { CompressedWriter } from './compressed-writer.js';
import { chooseSegmentWriter } from './index.js';
import { ThreadPoolWriter } from './thread-pool-writer.js';

let directory: string;
let handle: FileHandle;
beforeEach(async () => {
  directory = await temporaryDirectory('sink-writers-');
  handle = await open(join(directory, 'segment'), 'w+');
});
afterEach(async () => {
  await handle.close();
  await removeDirectory(directory);
});

describe('chooseSegmentWriter', () => {
  it.each([
    { method: 'none', blockingWrites: true, writer: BlockingWriter, atOnce: true },
    { method: 'none', blockingWrites: false, writer: ThreadPoolWriter, atOnce: false },
    { method: 'gzip', blockingWrites: true, writer: CompressedWriter, atOnce: false },
    { method: 'gzip', blockingWrites: false, writer: CompressedWriter, atOnce: false },
    { method: 'lz4', blockingWrites: true, writer: CompressedWriter, atOnce: false },
  ] as const)(
    'compression $method, blockingWrites $blockingWrites: $writer.name (atOnce $atOnce)',
    ({ method, blockingWrites, writer, atOnce }) => {
      const chosen = chooseSegmentWriter(handle, {
        compression: { method: method as CompressionMethod, level: 1 },
        sync: true,
        blockingWrites,
      });
      expect(chosen).toBeInstanceOf(writer);
      expect(chosen.atOnce).toBe(atOnce);
      chosen.destroy();
    },
  );
});

describe('BlockingWriter', () => {
  it('has written when write returns, and returns no promise from write or sync', () => {
    const writer = new BlockingWriter(handle.fd, true);
    expect(writer.write(Buffer.from('WAL bytes'), 4)).toBeUndefined();
    expect(readFileSync(join(directory, 'segment')).equals(Buffer.from('\0\0\0\0WAL bytes'))).toBe(true);
    expect(writer.sync()).toBeUndefined();
  });
});
