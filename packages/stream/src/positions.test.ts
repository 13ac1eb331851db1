import { describe, expect, it } from 'vitest';
import { lengthToKeepBeforeStop, nextSegmentBoundary, segmentStartOf } from './positions.js';

const MiB = 1024 * 1024;

describe('segment positions', () => {
  it('rounds down to the segment start and finds the next boundary', () => {
    expect(segmentStartOf(0x30000c8n, 16 * MiB)).toBe(0x3000000n);
    expect(segmentStartOf(0x3000000n, 16 * MiB)).toBe(0x3000000n);
    expect(segmentStartOf(0x16b374d848n, 16 * MiB)).toBe(0x16b3000000n);
    expect(nextSegmentBoundary(0x3000000n, MiB)).toBe(0x3100000n);
    expect(nextSegmentBoundary(0x30fffffn, MiB)).toBe(0x3100000n);
  });
});

describe('lengthToKeepBeforeStop', () => {
  it('keeps everything without endpos or without a boundary past endpos inside the message', () => {
    expect(lengthToKeepBeforeStop(0x3000000n, 0x100, undefined, MiB)).toBe(0x100);
    expect(lengthToKeepBeforeStop(0x3000000n, 0x100, 0x3000010n, MiB)).toBe(0x100);
    // Ends exactly at a boundary: nothing after it to drop.
    expect(lengthToKeepBeforeStop(0x30fff00n, 0x100, 0x30fff10n, MiB)).toBe(0x100);
  });

  it('cuts at the first boundary past endpos', () => {
    expect(lengthToKeepBeforeStop(0x30fff00n, 0x200, 0x30fff10n, MiB)).toBe(0x100);
    expect(lengthToKeepBeforeStop(0x30fff00n, 0x200, 0x3100000n, MiB)).toBe(0x200);
    expect(lengthToKeepBeforeStop(0x3000000n, 2 * MiB + 16, 0x3100000n, MiB)).toBe(2 * MiB);
  });
});
