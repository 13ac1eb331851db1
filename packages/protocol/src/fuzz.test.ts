import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBackendMessage, encodeBackendMessage } from './backend/backend-message.js';
import { WalError } from './errors.js';
import { decodeFrontendMessage, type FrontendDecodeContext } from './frontend/frontend-message.js';
import { decodeStartupPacket } from './frontend/startup-packet.js';
import { MessageFramer } from './io/framer.js';
import { parseLsn } from './lsn.js';
import { decodeReplicationMessage, decodeStandbyMessage } from './replication/replication-message.js';
import { encodeStandbyStatusUpdate } from './replication/standby-status-update.js';
import { encodeXLogData } from './replication/xlog-data.js';
import { cstring, int16, int32, message, untypedMessage } from './testing/naive-bytes.js';
import { parseWalFileName, parseWalSegmentSizeSetting } from './wal-file-name.js';

/**
 * Fuzzing: whatever bytes arrive, the framer and every decoder either return a value or throw a
 * WalError (never a RangeError/TypeError from reading past a buffer), terminate, and return byte
 * fields that lie inside the payload they were given.
 */

/** Every Buffer in a decoded value must be a view inside `payload` (or empty). */
function expectViewsInside(value: unknown, payload: Buffer): void {
  if (Buffer.isBuffer(value)) {
    if (value.length === 0) return;
    // Plain checks, not expect(): this runs hundreds of thousands of times.
    if (
      value.buffer !== payload.buffer ||
      value.byteOffset < payload.byteOffset ||
      value.byteOffset + value.length > payload.byteOffset + payload.length
    ) {
      throw new Error(`A decoded field lies outside its payload: ${value.toString('hex')}`);
    }
    return;
  }
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) expectViewsInside(child, payload);
  }
}

function attempt(decode: () => unknown, payload: Buffer): void {
  let result: unknown;
  try {
    result = decode();
  } catch (error) {
    if (!(error instanceof WalError) || !/^WAL_ERR_PROTOCOL_[A-Z_]+$/.test(error.code)) throw error;
    return;
  }
  expectViewsInside(result, payload);
}

const contexts: FrontendDecodeContext[] = [
  {},
  { authentication: 'password' },
  { authentication: 'sasl-initial' },
  { authentication: 'sasl' },
];

function decodeEverything(code: number, payload: Buffer): void {
  attempt(() => decodeBackendMessage(code, payload), payload);
  for (const context of contexts) attempt(() => decodeFrontendMessage(code, payload, context), payload);
  attempt(() => decodeReplicationMessage(payload), payload);
  attempt(() => decodeStandbyMessage(payload), payload);
  attempt(() => decodeStartupPacket(payload), payload);
}

/** Valid frames to mutate, so the fuzzer reaches deep inside each decoder. */
const seeds: Buffer[] = [
  encodeBackendMessage({
    type: 'ErrorResponse',
    fields: { severity: 'ERROR', code: '58P01', message: 'gone', detail: 'd' },
  }),
  encodeBackendMessage({
    type: 'RowDescription',
    fields: [
      { name: 'a', tableOid: 0, columnNumber: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 },
    ],
  }),
  message('D', int16(2), int32(1), [0x31], int32(-1)),
  message('R', int32(10), cstring('SCRAM-SHA-256'), [0]),
  message('R', int32(5), [1, 2, 3, 4]),
  message('K', int32(1), [1, 2, 3, 4]),
  message('v', int32(0), int32(1), cstring('_pq_.x')),
  message('W', [0], int16(1), int16(0)),
  message('S', cstring('a'), cstring('b')),
  message('p', cstring('SCRAM-SHA-256'), int32(3), [1, 2, 3]),
  message(
    'd',
    Array.from(encodeXLogData({ dataStart: 1n, walEnd: 2n, sendTime: 3n, data: Buffer.from([9, 9]) })),
  ),
  message('d', [0x6b, ...new Array(17).fill(0)]),
  message(
    'd',
    Array.from(
      encodeStandbyStatusUpdate({
        writeLsn: 1n,
        flushLsn: 1n,
        applyLsn: 0n,
        sendTime: 0n,
        replyRequested: false,
      }),
    ),
  ),
  untypedMessage(int32(196608), cstring('user'), cstring('u'), [0]),
  untypedMessage(int32(80877102), int32(5), [1, 2, 3, 4]),
];

const mutatedFrame = fc
  .tuple(
    fc.constantFrom(...seeds),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    fc.option(fc.nat(), { nil: undefined }),
  )
  .map(([seed, flips, cut]) => {
    const bytes = Buffer.from(seed);
    for (const [position, value] of flips) bytes[position % bytes.length] = value;
    return cut === undefined ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
  });

const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  mutatedFrame,
);

describe('fuzz: decoders only ever throw WalError', () => {
  it('the harness itself fails on a non-WalError and on a view outside the payload', () => {
    const payload = Buffer.alloc(4);
    expect(() => attempt(() => payload.readInt32BE(2), payload)).toThrow(RangeError);
    expect(() => attempt(() => ({ data: Buffer.alloc(2, 1) }), payload)).toThrow(/outside its payload/);
  });

  it('every decoder, on random and mutated payloads', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), anyBytes, (code, bytes) => {
        decodeEverything(code, bytes);
        // The mutated seeds are whole frames: also decode them as code + payload.
        if (bytes.length >= 1) decodeEverything(bytes[0]!, bytes.subarray(Math.min(5, bytes.length)));
        if (bytes.length >= 4) attempt(() => decodeStartupPacket(bytes.subarray(4)), bytes.subarray(4));
      }),
      { numRuns: 8_000 },
    );
  }, 60_000);

  it('the framer, on random streams in random chunks', () => {
    fc.assert(
      fc.property(
        fc.array(anyBytes, { maxLength: 6 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 300 }),
        (parts, chunkSizes, startup, maxMessageLength) => {
          const stream = Buffer.concat(parts);
          const framer = new MessageFramer({ maxMessageLength, expectStartupPacket: startup });
          let offset = 0;
          let frames = 0;
          let failed = false;
          for (let index = 0; offset < stream.length && !failed; index++) {
            const size = chunkSizes[index % chunkSizes.length]!;
            framer.push(Buffer.from(stream.subarray(offset, offset + size)));
            offset += size;
            try {
              for (let frame = framer.next(); frame !== undefined; frame = framer.next()) {
                frames++;
                // Each frame has a 4-byte header at least, so this bounds the loop: no hang.
                if (frames > stream.length / 4) throw new Error('more frames than the stream can hold');
                if (frame.payload.length > maxMessageLength) throw new Error('frame above the maximum');
                decodeEverything(frame.code, frame.payload);
              }
            } catch (error) {
              if (!(error instanceof WalError)) throw error;
              failed = true;
            }
          }
          if (!failed) expect(framer.bufferedLength).toBeLessThan(stream.length + 1);
        },
      ),
      { numRuns: 5_000 },
    );
  }, 60_000);

  it('the text parsers', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (text) => {
        for (const parse of [() => parseLsn(text), () => parseWalSegmentSizeSetting(text)]) {
          try {
            parse();
          } catch (error) {
            if (!(error instanceof WalError)) throw error;
          }
        }
        expect(() => parseWalFileName(text, 16 * 1024 * 1024)).not.toThrow();
      }),
      { numRuns: 5_000 },
    );
  });
});
