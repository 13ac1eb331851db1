import { createRequire } from 'node:module';
import { finishCrc32c, updateCrc32c } from '@wal/protocol/wal-format';

/**
 * CRC-32C continued from a finished value over `data[start, end)` (0 before the first byte), as
 * zlib-style `crc32c(data, previous)` functions chain. Native (`@node-rs/crc32`: SSE 4.2 or ARM
 * CRC instructions, about 2 GiB/s here) when it loads and gives the check value, else the
 * JavaScript slicing-by-8 of `@wal/protocol` (about 300 MiB/s); docs/adr/0009-wal-verify.md.
 */
export type ContinueCrc32c = (previous: number, data: Buffer, start: number, end: number) => number;

/** Below this many bytes the JavaScript loop beats a native call. */
const NATIVE_THRESHOLD = 96;

function javascript(previous: number, data: Buffer, start: number, end: number): number {
  return finishCrc32c(updateCrc32c((previous ^ 0xffffffff) >>> 0, data, start, end));
}

function load(): ContinueCrc32c {
  let native: { crc32c(input: Uint8Array, initialState?: number): number } | undefined;
  try {
    native = createRequire(import.meta.url)('@node-rs/crc32');
    if (native?.crc32c(Buffer.from('123456789')) !== 0xe3069283) native = undefined;
  } catch {
    native = undefined;
  }
  if (native === undefined) return javascript;
  const crc32c = native.crc32c;
  return (previous, data, start, end) =>
    end - start < NATIVE_THRESHOLD
      ? javascript(previous, data, start, end)
      : crc32c(data.subarray(start, end), previous) >>> 0;
}

export const continueCrc32c: ContinueCrc32c = load();
