import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../errors.js';
import { cstring, int32, message, untypedMessage } from '../testing/naive-bytes.js';
import { type Frame, MessageFramer } from './framer.js';

/** Three frames of different shapes, built independently of the production writer. */
const frames = [
  message('R', int32(0)),
  message('S', cstring('server_version'), cstring('18.4')),
  message('c'),
  message(
    'd',
    new Array(300).fill(0).map((_, index) => index % 251),
  ),
  message('Z', [0x49]),
];
const stream = Buffer.concat(frames);

function expected(): Frame[] {
  return frames.map((frame) => ({ code: frame[0]!, payload: frame.subarray(5) }));
}

const expectedSummary = summarize(expected());

/** A cheap comparable form, so loops over thousands of chunkings need one assertion at the end. */
function summarize(received: Frame[]): string {
  return received.map((frame) => `${frame.code}:${frame.payload.toString('hex')}`).join(' ');
}

function drain(framer: MessageFramer): Frame[] {
  const result: Frame[] = [];
  for (let frame = framer.next(); frame !== undefined; frame = framer.next()) result.push(frame);
  return result;
}

function chunksOf(bytes: Buffer, cuts: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    // Fresh, unpooled copies: a real socket hands out separate buffers.
    const chunk = Buffer.allocUnsafeSlow(cut - start);
    bytes.copy(chunk, 0, start, cut);
    chunks.push(chunk);
    start = cut;
  }
  return chunks;
}

describe('MessageFramer chunking', () => {
  it('frames the stream split at every single offset', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const framer = new MessageFramer();
      const received: Frame[] = [];
      for (const chunk of chunksOf(stream, [cut])) {
        framer.push(chunk);
        received.push(...drain(framer));
      }
      expect(received).toEqual(expected());
      expect(framer.bufferedLength).toBe(0);
    }
  });

  it('frames the stream split at every pair of offsets', () => {
    const failures: string[] = [];
    for (let first = 0; first <= stream.length; first += 2) {
      for (let second = first; second <= stream.length; second += 5) {
        const framer = new MessageFramer();
        const received: Frame[] = [];
        for (const chunk of chunksOf(stream, [first, second])) {
          framer.push(chunk);
          received.push(...drain(framer));
        }
        if (summarize(received) !== expectedSummary) failures.push(`${first},${second}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('frames the stream fed one byte at a time', () => {
    const framer = new MessageFramer();
    const received: Frame[] = [];
    for (const byte of stream) {
      framer.push(Buffer.from([byte]));
      received.push(...drain(framer));
    }
    expect(received).toEqual(expected());
  });

  it('frames any random chunking (fast-check)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: stream.length }), { maxLength: 40 }), (cuts) => {
        const framer = new MessageFramer();
        const received: Frame[] = [];
        for (const chunk of chunksOf(
          stream,
          [...cuts].sort((a, b) => a - b),
        )) {
          framer.push(chunk);
          received.push(...drain(framer));
        }
        expect(received).toEqual(expected());
      }),
      { numRuns: 500 },
    );
  });

  it('reports how many bytes it holds and returns undefined until a frame is complete', () => {
    const framer = new MessageFramer();
    expect(framer.next()).toBeUndefined();
    framer.push(stream.subarray(0, 3));
    expect(framer.bufferedLength).toBe(3);
    expect(framer.next()).toBeUndefined();
    framer.push(stream.subarray(3, 9));
    expect(framer.next()).toEqual({ code: 0x52, payload: Buffer.from([0, 0, 0, 0]) });
    expect(framer.bufferedLength).toBe(0);
    framer.push(Buffer.alloc(0));
    expect(framer.bufferedLength).toBe(0);
  });
});

describe('MessageFramer copying and ownership (docs/adr/0001-buffer-ownership.md)', () => {
  it('hands out a view when the frame lies inside one chunk', () => {
    const chunk = Buffer.from(stream);
    const framer = new MessageFramer();
    framer.push(chunk);
    const received = drain(framer);
    expect(received).toHaveLength(frames.length);
    for (const frame of received) {
      // An empty payload needs no memory at all.
      if (frame.payload.length > 0) expect(frame.payload.buffer).toBe(chunk.buffer);
    }
  });

  it('assembles a frame spread over chunks into a new buffer of exactly its size', () => {
    const frame = frames[3]!;
    const chunks = chunksOf(frame, [100, 200]);
    const framer = new MessageFramer();
    framer.push(chunks[0]!);
    framer.push(chunks[1]!);
    expect(framer.next()).toBeUndefined();
    framer.push(chunks[2]!);
    const assembled = framer.next()!;
    expect(assembled.payload).toEqual(frame.subarray(5));
    expect(assembled.payload.length).toBe(frame.length - 5);
    for (const chunk of chunks) expect(assembled.payload.buffer).not.toBe(chunk.buffer);
  });

  it('joins chunks that continue each other in memory, so a frame across them is still a view', () => {
    // A reader that fills one large buffer piece by piece pushes consecutive views of it.
    const slab = Buffer.allocUnsafeSlow(stream.length + 16);
    stream.copy(slab, 8);
    const framer = new MessageFramer();
    const received: Frame[] = [];
    // Cut inside the 300-byte CopyData frame and inside a header.
    const cuts = [8, 40, 45, 200, 333, 8 + stream.length];
    for (let index = 1; index < cuts.length; index++) {
      framer.push(slab.subarray(cuts[index - 1], cuts[index]));
      received.push(...drain(framer));
    }
    expect(summarize(received)).toBe(expectedSummary);
    for (const frame of received) {
      if (frame.payload.length > 0) expect(frame.payload.buffer).toBe(slab.buffer);
    }
    expect(framer.bufferedLength).toBe(0);
  });

  it('copies a frame across views of one buffer that do not continue each other', () => {
    const slab = Buffer.allocUnsafeSlow(stream.length * 2);
    // The second half of the stream is placed before the first half: same memory, wrong order.
    const half = 120;
    stream.copy(slab, 0, half);
    stream.copy(slab, stream.length, 0, half);
    const framer = new MessageFramer();
    framer.push(slab.subarray(stream.length, stream.length + half));
    framer.push(slab.subarray(0, stream.length - half));
    const received = drain(framer);
    expect(summarize(received)).toBe(expectedSummary);
    const spanning = received[3]!;
    expect(spanning.payload.buffer).not.toBe(slab.buffer);
  });

  it('never changes a payload already handed out, and never writes into pushed chunks', () => {
    const framer = new MessageFramer();
    const chunks = chunksOf(Buffer.concat([stream, stream, stream]), [7, 8, 300, 301, 500, 777]);
    const snapshots = chunks.map((chunk) => Buffer.from(chunk));
    const held: { payload: Buffer; copy: Buffer }[] = [];
    for (const chunk of chunks) {
      framer.push(chunk);
      for (const frame of drain(framer))
        held.push({ payload: frame.payload, copy: Buffer.from(frame.payload) });
    }
    expect(held).toHaveLength(frames.length * 3);
    for (const { payload, copy } of held) expect(payload).toEqual(copy);
    chunks.forEach((chunk, index) => {
      expect(chunk).toEqual(snapshots[index]);
    });
  });

  it('hands out an empty payload for a header-only message', () => {
    const framer = new MessageFramer();
    framer.push(message('c'));
    const frame = framer.next()!;
    expect(frame.code).toBe(0x63);
    expect(frame.payload.length).toBe(0);
  });
});

function expectFramingError(framer: MessageFramer, code: string, text: RegExp): ProtocolError {
  let caught: unknown;
  try {
    framer.next();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  expect((caught as ProtocolError).code).toBe(code);
  expect((caught as ProtocolError).message).toMatch(text);
  return caught as ProtocolError;
}

describe('MessageFramer limits', () => {
  it('rejects a payload longer than maxMessageLength as soon as the header arrives', () => {
    const framer = new MessageFramer({ maxMessageLength: 100 });
    framer.push(Buffer.from([0x64, ...int32(105)]));
    expectFramingError(
      framer,
      'WAL_ERR_PROTOCOL_FRAME_TOO_LONG',
      /payload of 101 bytes, more than the maximum of 100/,
    );
  });

  it('accepts a payload of exactly maxMessageLength', () => {
    const framer = new MessageFramer({ maxMessageLength: 4 });
    framer.push(message('d', [1, 2, 3, 4]));
    expect(framer.next()?.payload).toEqual(Buffer.from([1, 2, 3, 4]));
  });

  it('rejects lengths below 4 and negative lengths, and stays failed', () => {
    for (const length of [0, 3, -1, -0x80000000]) {
      const framer = new MessageFramer();
      framer.push(Buffer.from([0x64, ...int32(length), 1, 2, 3]));
      const first = expectFramingError(
        framer,
        'WAL_ERR_PROTOCOL_INVALID_FRAME_LENGTH',
        new RegExp(`Invalid length ${length}`),
      );
      framer.push(message('c'));
      expect(() => framer.next()).toThrow(first);
    }
  });

  it('rejects the default maximum plus one (64 MiB)', () => {
    const framer = new MessageFramer();
    framer.push(Buffer.from([0x64, ...int32(64 * 1024 * 1024 + 5)]));
    expectFramingError(framer, 'WAL_ERR_PROTOCOL_FRAME_TOO_LONG', /67108865 bytes/);
  });

  it('refuses an invalid maxMessageLength option', () => {
    expect(() => new MessageFramer({ maxMessageLength: -1 })).toThrow(ProtocolError);
    expect(() => new MessageFramer({ maxMessageLength: 1.5 })).toThrow(/maxMessageLength/);
  });
});

describe('MessageFramer startup packets (server side)', () => {
  const startup = untypedMessage(int32(196608), cstring('user'), cstring('u'), [0]);
  const ssl = untypedMessage(int32(80877103));

  it('frames a startup packet with code 0, then typed messages', () => {
    const framer = new MessageFramer({ expectStartupPacket: true });
    framer.push(Buffer.concat([startup, message('Q', cstring('IDENTIFY_SYSTEM'))]));
    expect(framer.next()).toEqual({ code: 0, payload: startup.subarray(4) });
    expect(framer.next()).toEqual({ code: 0x51, payload: Buffer.from(cstring('IDENTIFY_SYSTEM')) });
  });

  it('expects another startup packet after an SSLRequest when told to', () => {
    const bytes = Buffer.concat([ssl, startup]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const framer = new MessageFramer({ expectStartupPacket: true });
      const received: Frame[] = [];
      for (const chunk of chunksOf(bytes, [cut])) {
        framer.push(chunk);
        // The server answers the SSLRequest ('N') and then waits for a second startup packet.
        for (let frame = framer.next(); frame !== undefined; frame = framer.next()) {
          received.push(frame);
          framer.expectStartupPacket();
        }
      }
      expect(received).toEqual([
        { code: 0, payload: ssl.subarray(4) },
        { code: 0, payload: startup.subarray(4) },
      ]);
    }
  });

  it('reads typed messages once the startup packet is through', () => {
    const framer = new MessageFramer({ expectStartupPacket: true });
    framer.push(Buffer.concat([ssl, message('X')]));
    expect(framer.next()?.code).toBe(0);
    expect(framer.next()).toEqual({ code: 0x58, payload: Buffer.alloc(0) });
  });

  it('limits a startup packet to 10000 bytes and to at least 8', () => {
    const tooLong = new MessageFramer({ expectStartupPacket: true });
    tooLong.push(Buffer.from(int32(10_005)));
    expectFramingError(tooLong, 'WAL_ERR_PROTOCOL_FRAME_TOO_LONG', /startup packet/);
    const tooShort = new MessageFramer({ expectStartupPacket: true });
    tooShort.push(Buffer.from(int32(7)));
    expectFramingError(tooShort, 'WAL_ERR_PROTOCOL_INVALID_FRAME_LENGTH', /at least 8/);
  });
});
