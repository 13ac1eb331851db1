/**
 * XXH32 (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md), needed for the LZ4 frame
 * header checksum and the optional content checksum. Streaming, so a segment is hashed as it passes
 * without being held.
 */
const PRIME1 = 0x9e3779b1;
const PRIME2 = 0x85ebca77;
const PRIME3 = 0xc2b2ae3d;
const PRIME4 = 0x27d4eb2f;
const PRIME5 = 0x165667b1;

function rotateLeft(value: number, bits: number): number {
  return ((value << bits) | (value >>> (32 - bits))) >>> 0;
}

function round(accumulator: number, lane: number): number {
  return Math.imul(rotateLeft((accumulator + Math.imul(lane, PRIME2)) >>> 0, 13), PRIME1) >>> 0;
}

export class Xxhash32 {
  private v1: number;
  private v2: number;
  private v3: number;
  private v4: number;
  private readonly memory = Buffer.alloc(16);
  private memoryLength = 0;
  private totalLength = 0;

  constructor(private readonly seed = 0) {
    this.v1 = (seed + PRIME1 + PRIME2) >>> 0;
    this.v2 = (seed + PRIME2) >>> 0;
    this.v3 = seed >>> 0;
    this.v4 = (seed - PRIME1) >>> 0;
  }

  update(data: Uint8Array): this {
    this.totalLength += data.byteLength;
    let offset = 0;
    if (this.memoryLength > 0) {
      const taken = Math.min(16 - this.memoryLength, data.byteLength);
      this.memory.set(data.subarray(0, taken), this.memoryLength);
      this.memoryLength += taken;
      offset = taken;
      if (this.memoryLength < 16) return this;
      this.stripe(this.memory, 0);
      this.memoryLength = 0;
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    while (data.byteLength - offset >= 16) {
      this.v1 = round(this.v1, view.getUint32(offset, true));
      this.v2 = round(this.v2, view.getUint32(offset + 4, true));
      this.v3 = round(this.v3, view.getUint32(offset + 8, true));
      this.v4 = round(this.v4, view.getUint32(offset + 12, true));
      offset += 16;
    }
    if (offset < data.byteLength) {
      this.memory.set(data.subarray(offset), 0);
      this.memoryLength = data.byteLength - offset;
    }
    return this;
  }

  digest(): number {
    let hash: number;
    if (this.totalLength >= 16) {
      hash =
        (rotateLeft(this.v1, 1) +
          rotateLeft(this.v2, 7) +
          rotateLeft(this.v3, 12) +
          rotateLeft(this.v4, 18)) >>>
        0;
    } else {
      hash = (this.seed + PRIME5) >>> 0;
    }
    // The length term is modulo 2^32, as the reference implementation's `(U32)len`.
    hash = (hash + (this.totalLength % 0x1_0000_0000)) >>> 0;
    const tail = this.memory;
    let offset = 0;
    while (offset + 4 <= this.memoryLength) {
      hash =
        Math.imul(rotateLeft((hash + Math.imul(tail.readUInt32LE(offset), PRIME3)) >>> 0, 17), PRIME4) >>> 0;
      offset += 4;
    }
    while (offset < this.memoryLength) {
      hash = Math.imul(rotateLeft((hash + Math.imul(tail[offset]!, PRIME5)) >>> 0, 11), PRIME1) >>> 0;
      offset += 1;
    }
    hash ^= hash >>> 15;
    hash = Math.imul(hash, PRIME2) >>> 0;
    hash ^= hash >>> 13;
    hash = Math.imul(hash, PRIME3) >>> 0;
    hash ^= hash >>> 16;
    return hash >>> 0;
  }

  private stripe(source: Buffer, offset: number): void {
    this.v1 = round(this.v1, source.readUInt32LE(offset));
    this.v2 = round(this.v2, source.readUInt32LE(offset + 4));
    this.v3 = round(this.v3, source.readUInt32LE(offset + 8));
    this.v4 = round(this.v4, source.readUInt32LE(offset + 12));
  }
}

export function xxhash32(data: Uint8Array, seed = 0): number {
  return new Xxhash32(seed).update(data).digest();
}
