/**
 * A deliberately naive byte builder for tests: plain arrays of numbers and arithmetic, no
 * `Buffer.write*`, nothing shared with the production writer. Expected bytes in tests come from
 * here, so a bug in `MessageWriter` cannot hide behind the same bug in the oracle.
 */
export type Bytes = number[];

export function int8(value: number): Bytes {
  return [((value % 256) + 256) % 256];
}

export function int16(value: number): Bytes {
  const unsigned = value < 0 ? value + 65536 : value;
  return [Math.floor(unsigned / 256) % 256, unsigned % 256];
}

export function int32(value: number): Bytes {
  const unsigned = value < 0 ? value + 4294967296 : value;
  return [
    Math.floor(unsigned / 16777216) % 256,
    Math.floor(unsigned / 65536) % 256,
    Math.floor(unsigned / 256) % 256,
    unsigned % 256,
  ];
}

export function int64(value: bigint): Bytes {
  let unsigned = value < 0n ? value + 18446744073709551616n : value;
  const bytes: Bytes = [];
  for (let index = 0; index < 8; index++) {
    bytes.unshift(Number(unsigned % 256n));
    unsigned /= 256n;
  }
  return bytes;
}

export function ascii(text: string): Bytes {
  return Array.from(new TextEncoder().encode(text));
}

/** A NUL-terminated string. */
export function cstring(text: string): Bytes {
  return [...ascii(text), 0];
}

export function raw(bytes: Uint8Array | Bytes): Bytes {
  return Array.from(bytes);
}

/** A typed message: code character, Int32 length (counting itself), body. */
export function message(code: string, ...parts: Bytes[]): Buffer {
  const body = parts.flat();
  return Buffer.from([code.charCodeAt(0), ...int32(body.length + 4), ...body]);
}

/** An untyped (startup) packet: Int32 length (counting itself), body. */
export function untypedMessage(...parts: Bytes[]): Buffer {
  const body = parts.flat();
  return Buffer.from([...int32(body.length + 4), ...body]);
}

/** A plain payload (for decoders that take the bytes after the length). */
export function payload(...parts: Bytes[]): Buffer {
  return Buffer.from(parts.flat());
}
