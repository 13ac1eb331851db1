import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CRC32C_INITIAL, crc32c, finishCrc32c, updateCrc32c } from './crc32c.js';

/** Bit-at-a-time CRC-32C straight from the definition: the independent oracle. */
function naiveCrc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe('crc32c', () => {
  it('matches the standard check value of "123456789"', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('matches published vectors (RFC 3720 B.4)', () => {
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32c(Buffer.alloc(32, 0x00))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    const ascending = Buffer.from(Array.from({ length: 32 }, (_, index) => index));
    expect(crc32c(ascending)).toBe(0x46dd794e);
  });

  it('equals the bit-at-a-time definition for any data, start and end', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (data, a, b) => {
        const start = data.length === 0 ? 0 : a % (data.length + 1);
        const end = start + (data.length === 0 ? 0 : b % (data.length - start + 1));
        expect(crc32c(data, start, end)).toBe(naiveCrc32c(data.subarray(start, end)));
      }),
    );
  });

  it('chains updates over pieces like one pass over the whole', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (data, cut) => {
        const split = data.length === 0 ? 0 : cut % (data.length + 1);
        const chained = updateCrc32c(updateCrc32c(CRC32C_INITIAL, data, 0, split), data, split, data.length);
        expect(finishCrc32c(chained)).toBe(crc32c(data));
      }),
    );
  });
});
