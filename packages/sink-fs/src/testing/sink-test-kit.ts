import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { decompressFrameSync } from 'lz4-napi';
import type { DirectorySink } from '../directory-sink.js';
import { fakeWal } from './fake-wal.js';

/** Facts of the pretend server the sink tests write for. */
export const SYSTEM_ID = 7_301_234_567_890_123_456n;
export const SEGMENT_SIZE = 1024 * 1024;
export const SEGMENT = BigInt(SEGMENT_SIZE);

/**
 * Reads what the sink wrote back with other code than its encoders (node:zlib, lz4-napi's frame
 * decoder), by compression method; `suffixes` are the file name suffixes of each method.
 */
export const decoders = {
  none: (data: Buffer) => data,
  gzip: (data: Buffer) => gunzipSync(data),
  lz4: (data: Buffer) => decompressFrameSync(data),
} as const;
export const suffixes = { none: '', gzip: '.gz', lz4: '.lz4' } as const;

export async function temporaryDirectory(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function removeDirectory(directory: string): Promise<void> {
  await rm(directory, { recursive: true, force: true });
}

export async function sortedNames(directory: string): Promise<string[]> {
  return (await readdir(directory)).sort();
}

/** Streams fake WAL [start, end) into the sink in `chunk`-byte writes, like XLogData messages. */
export async function writeRange(
  sink: DirectorySink,
  start: bigint,
  end: bigint,
  options: { chunk?: number; timeline?: number; systemId?: bigint } = {},
): Promise<void> {
  const chunk = BigInt(options.chunk ?? 128 * 1024);
  for (let lsn = start; lsn < end; ) {
    const length = lsn + chunk <= end ? chunk : end - lsn;
    await sink.write(options.timeline ?? 1, lsn, wal(lsn, Number(length), options));
    lsn += length;
  }
}

export function wal(
  start: bigint,
  length: number,
  options: { timeline?: number; systemId?: bigint } = {},
): Buffer {
  return fakeWal(start, length, {
    systemId: options.systemId ?? SYSTEM_ID,
    segmentSize: SEGMENT_SIZE,
    timeline: options.timeline ?? 1,
  });
}
