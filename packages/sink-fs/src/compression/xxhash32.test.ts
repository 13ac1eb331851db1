import { describe, expect, it } from 'vitest';
import { Xxhash32, xxhash32 } from './xxhash32.js';

describe('xxhash32', () => {
  // Reference values of the xxHash project (xxhsum -H0).
  it.each([
    ['', 0x02cc5d05],
    ['a', 0x550d7456],
    ['abc', 0x32d153ff],
    ['Nobody inspects the spammish repetition', 0xe2293b2f],
  ])('hashes %j like the reference implementation', (text, expected) => {
    expect(xxhash32(Buffer.from(text))).toBe(expected);
  });

  it('gives the same digest whatever the update split', () => {
    const data = Buffer.alloc(1000);
    for (let index = 0; index < data.length; index += 1) data[index] = (index * 31 + 7) & 0xff;
    const whole = xxhash32(data);
    for (const split of [1, 3, 15, 16, 17, 64, 999]) {
      const hasher = new Xxhash32();
      for (let offset = 0; offset < data.length; offset += split)
        hasher.update(data.subarray(offset, offset + split));
      expect(hasher.digest()).toBe(whole);
    }
  });
});
