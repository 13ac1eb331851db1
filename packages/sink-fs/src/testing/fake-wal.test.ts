import { describe, expect, it } from 'vitest';
import { fakeWal } from './fake-wal.js';

const options = { systemId: 42n, segmentSize: 1024 * 1024 };

describe('fakeWal', () => {
  it('gives the same bytes however a range is split', () => {
    const start = 1024n * 1024n - 50n;
    const whole = fakeWal(start, 200, options);
    for (const split of [1, 3, 39, 41, 100]) {
      const pieces: Buffer[] = [];
      for (let offset = 0; offset < 200; offset += split) {
        pieces.push(fakeWal(start + BigInt(offset), Math.min(split, 200 - offset), options));
      }
      expect(Buffer.concat(pieces).equals(whole)).toBe(true);
    }
  });

  it('starts every segment with a long page header', () => {
    const segment = fakeWal(1024n * 1024n, 40, options);
    expect(segment.readUInt16LE(0)).toBe(0xd110);
    expect(segment.readUInt16LE(2) & 2).toBe(2);
    expect(segment.readBigUInt64LE(8)).toBe(1024n * 1024n);
    expect(segment.readBigUInt64LE(24)).toBe(42n);
    expect(segment.readUInt32LE(32)).toBe(1024 * 1024);
  });
});
