import type { Readable } from 'node:stream';

/** A body that ended before its Content-Length: the connection broke; a new try reads it again. */
export class TruncatedBodyError extends Error {
  override readonly name = 'TruncatedBody';
}

/**
 * Reads a response body into one buffer. With a known length the chunks are copied once into a
 * buffer of that size; a body longer or shorter than announced is an error.
 */
export async function readBody(body: Readable | undefined, length: number | undefined): Promise<Buffer> {
  if (body === undefined) return Buffer.alloc(0);
  if (length === undefined) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
  const result = Buffer.allocUnsafe(length);
  let filled = 0;
  for await (const chunk of body) {
    const bytes = chunk as Buffer;
    if (filled + bytes.length > length) {
      body.destroy();
      throw new TruncatedBodyError(`the body is longer than its Content-Length of ${length} bytes`);
    }
    bytes.copy(result, filled);
    filled += bytes.length;
  }
  if (filled !== length) {
    throw new TruncatedBodyError(`the body ended after ${filled} of ${length} bytes`);
  }
  return result;
}
