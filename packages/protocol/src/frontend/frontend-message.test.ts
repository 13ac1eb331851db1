import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../errors.js';
import { cstring, int32, message, payload, raw, untypedMessage } from '../testing/naive-bytes.js';
import {
  decodeFrontendMessage,
  encodeFrontendMessage,
  type FrontendDecodeContext,
  type FrontendMessage,
} from './frontend-message.js';
import { decodeStartupPacket } from './startup-packet.js';

const UNTYPED = new Set(['StartupMessage', 'SSLRequest', 'GSSENCRequest', 'CancelRequest']);

function contextFor(decoded: FrontendMessage): FrontendDecodeContext {
  switch (decoded.type) {
    case 'PasswordMessage':
      return { authentication: 'password' };
    case 'SASLInitialResponse':
      return { authentication: 'sasl-initial' };
    case 'SASLResponse':
      return { authentication: 'sasl' };
    default:
      return {};
  }
}

/** Decodes a whole frame the way a server would, checking the length field on the way. */
function decodeFrame(frame: Buffer, decoded: FrontendMessage): FrontendMessage {
  if (UNTYPED.has(decoded.type)) {
    expect(frame.readInt32BE(0)).toBe(frame.length);
    return decodeStartupPacket(frame.subarray(4));
  }
  expect(frame.readInt32BE(1)).toBe(frame.length - 1);
  return decodeFrontendMessage(frame[0]!, frame.subarray(5), contextFor(decoded));
}

const key32 = Buffer.alloc(32, 0x5a);

const knownMessages: [string, FrontendMessage, Buffer][] = [
  [
    'StartupMessage 3.0 (replication)',
    {
      type: 'StartupMessage',
      protocolVersion: 196608,
      parameters: {
        user: 'postgres',
        database: 'replication',
        replication: 'true',
        application_name: 'pg_receivewal',
      },
    },
    untypedMessage(
      int32(196608),
      cstring('user'),
      cstring('postgres'),
      cstring('database'),
      cstring('replication'),
      cstring('replication'),
      cstring('true'),
      cstring('application_name'),
      cstring('pg_receivewal'),
      [0],
    ),
  ],
  [
    'StartupMessage 3.2',
    { type: 'StartupMessage', protocolVersion: 196610, parameters: { user: 'ü' } },
    untypedMessage(int32(196610), cstring('user'), [0xc3, 0xbc, 0], [0]),
  ],
  ['SSLRequest', { type: 'SSLRequest' }, untypedMessage(int32(80877103))],
  ['GSSENCRequest', { type: 'GSSENCRequest' }, untypedMessage(int32(80877104))],
  [
    'CancelRequest 3.0',
    { type: 'CancelRequest', processId: 1234, secretKey: Buffer.from([1, 2, 3, 4]) },
    untypedMessage(int32(80877102), int32(1234), [1, 2, 3, 4]),
  ],
  [
    'CancelRequest 3.2',
    { type: 'CancelRequest', processId: 99, secretKey: key32 },
    untypedMessage(int32(80877102), int32(99), raw(key32)),
  ],
  [
    'PasswordMessage',
    { type: 'PasswordMessage', password: Buffer.from('md5abc') },
    message('p', cstring('md5abc')),
  ],
  [
    'SASLInitialResponse',
    { type: 'SASLInitialResponse', mechanism: 'SCRAM-SHA-256', data: Buffer.from('n,,n=,r=abc') },
    message('p', cstring('SCRAM-SHA-256'), int32(11), raw(Buffer.from('n,,n=,r=abc'))),
  ],
  [
    'SASLInitialResponse without data',
    { type: 'SASLInitialResponse', mechanism: 'X', data: null },
    message('p', cstring('X'), int32(-1)),
  ],
  [
    'SASLResponse',
    { type: 'SASLResponse', data: Buffer.from('c=biws,r=abc,p=xyz') },
    message('p', raw(Buffer.from('c=biws,r=abc,p=xyz'))),
  ],
  ['Query', { type: 'Query', sql: 'IDENTIFY_SYSTEM' }, message('Q', cstring('IDENTIFY_SYSTEM'))],
  ['Terminate', { type: 'Terminate' }, message('X')],
  ['CopyData', { type: 'CopyData', data: Buffer.from([0x72, 0]) }, message('d', [0x72, 0])],
  ['CopyDone', { type: 'CopyDone' }, message('c')],
  ['CopyFail', { type: 'CopyFail', message: 'aborted' }, message('f', cstring('aborted'))],
];

describe('frontend messages against independently built bytes', () => {
  it.each(knownMessages)('%s encodes to the expected bytes', (_name, decoded, bytes) => {
    expect(encodeFrontendMessage(decoded)).toEqual(bytes);
  });

  it.each(knownMessages)('%s decodes from the expected bytes', (_name, decoded, bytes) => {
    expect(decodeFrame(bytes, decoded)).toEqual(decoded);
  });
});

function expectProtocolError(action: () => unknown, code: string, text: RegExp): void {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  expect((caught as ProtocolError).code).toBe(code);
  expect((caught as ProtocolError).message).toMatch(text);
}

describe('startup packets reject bad input', () => {
  it.each<[string, Buffer, string, RegExp]>([
    [
      'an empty packet',
      payload(),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /Startup packet must be at least 4 bytes, got 0/,
    ],
    [
      'an SSLRequest with extra bytes',
      payload(int32(80877103), [0]),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /SSLRequest must be 4 bytes, got 5/,
    ],
    [
      'a GSSENCRequest with extra bytes',
      payload(int32(80877104), [0, 0]),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /GSSENCRequest must be 4 bytes, got 6/,
    ],
    [
      'a CancelRequest without a key',
      payload(int32(80877102), int32(1)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /CancelRequest secret key must be 4 to 256 bytes, got 0/,
    ],
    [
      'a CancelRequest with a 257-byte key',
      payload(int32(80877102), int32(1), new Array(257).fill(0)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /got 257/,
    ],
    [
      'an unknown 1234/xxxx request',
      payload(int32(80877105)),
      'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE',
      /1234\/5681/,
    ],
    ['protocol 2.0', payload(int32(0x20000), [0]), 'WAL_ERR_PROTOCOL_UNSUPPORTED_VERSION', /protocol 2\.0/],
    [
      'parameters without the final NUL',
      payload(int32(196608), cstring('user'), cstring('x')),
      'WAL_ERR_PROTOCOL_UNTERMINATED_STRING',
      /parameter name/,
    ],
    [
      'a parameter without a value',
      payload(int32(196608), cstring('user')),
      'WAL_ERR_PROTOCOL_UNTERMINATED_STRING',
      /value of parameter "user"/,
    ],
    [
      'bytes after the final NUL',
      payload(int32(196608), [0, 1]),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /trailing/,
    ],
  ])('%s', (_name, bytes, code, text) => {
    expectProtocolError(() => decodeStartupPacket(bytes), code, text);
  });

  it('keeps a "__proto__" parameter as a plain key', () => {
    const decoded = decodeStartupPacket(payload(int32(196608), cstring('__proto__'), cstring('x'), [0]));
    if (decoded.type !== 'StartupMessage') throw new Error('expected a StartupMessage');
    expect(Object.getOwnPropertyDescriptor(decoded.parameters, '__proto__')?.value).toBe('x');
    expect(Object.keys(decoded.parameters)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe('typed frontend messages reject bad input', () => {
  it.each<[string, number, Buffer, FrontendDecodeContext, string, RegExp]>([
    [
      "'p' with no authentication outstanding",
      0x70,
      payload(cstring('pw')),
      {},
      'WAL_ERR_PROTOCOL_UNEXPECTED_MESSAGE',
      /no authentication request/,
    ],
    [
      'a password without its NUL',
      0x70,
      payload([0x61]),
      { authentication: 'password' },
      'WAL_ERR_PROTOCOL_UNTERMINATED_STRING',
      /password/,
    ],
    [
      'a password with bytes after the NUL',
      0x70,
      payload(cstring('a'), [0x62]),
      { authentication: 'password' },
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /trailing/,
    ],
    [
      'SASLInitialResponse data shorter than announced',
      0x70,
      payload(cstring('SCRAM-SHA-256'), int32(50), [1]),
      { authentication: 'sasl-initial' },
      'WAL_ERR_PROTOCOL_MESSAGE_TRUNCATED',
      /initial response needs 50 bytes/,
    ],
    [
      'SASLInitialResponse with length -5',
      0x70,
      payload(cstring('SCRAM-SHA-256'), int32(-5)),
      { authentication: 'sasl-initial' },
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      /invalid data length -5/,
    ],
    [
      'SASLInitialResponse with trailing bytes',
      0x70,
      payload(cstring('M'), int32(0), [1]),
      { authentication: 'sasl-initial' },
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /trailing/,
    ],
    [
      'Query without its NUL',
      0x51,
      payload([0x53]),
      {},
      'WAL_ERR_PROTOCOL_UNTERMINATED_STRING',
      /query text/,
    ],
    [
      'Terminate with bytes',
      0x58,
      payload([0]),
      {},
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /Terminate must be 0 bytes, got 1/,
    ],
    [
      'CopyDone with bytes',
      0x63,
      payload([0]),
      {},
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /CopyDone must be 0 bytes, got 1/,
    ],
    [
      'CopyFail without its NUL',
      0x66,
      payload([0x61]),
      {},
      'WAL_ERR_PROTOCOL_UNTERMINATED_STRING',
      /failure message/,
    ],
    [
      'an extended-protocol Parse',
      0x50,
      payload(),
      {},
      'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE',
      /Unexpected frontend message type 'P'/,
    ],
  ])('%s', (_name, code, bytes, context, errorCode, text) => {
    expectProtocolError(() => decodeFrontendMessage(code, bytes, context), errorCode, text);
  });
});

describe('frontend encoders refuse values that cannot be sent', () => {
  it.each<[string, FrontendMessage, RegExp]>([
    [
      'a NUL in a parameter value',
      { type: 'StartupMessage', protocolVersion: 196608, parameters: { user: 'a\0b' } },
      /NUL/,
    ],
    [
      'an empty parameter name',
      { type: 'StartupMessage', protocolVersion: 196608, parameters: { '': 'x' } },
      /cannot be empty/,
    ],
    [
      'a NUL byte in a password',
      { type: 'PasswordMessage', password: Buffer.from([0x61, 0, 0x62]) },
      /NUL byte/,
    ],
    ['a NUL in a query', { type: 'Query', sql: 'SELECT 1;\0DROP' }, /NUL/],
    ['a 3-byte cancel key', { type: 'CancelRequest', processId: 1, secretKey: Buffer.alloc(3) }, /got 3/],
  ])('%s', (_name, decoded, text) => {
    expect(() => encodeFrontendMessage(decoded)).toThrow(text);
    expect(() => encodeFrontendMessage(decoded)).toThrow(ProtocolError);
  });
});

describe('frontend round trips (fast-check)', () => {
  const text = fc.string({ unit: 'grapheme', maxLength: 20 }).filter((value) => !value.includes('\0'));
  const bytes = fc.uint8Array({ maxLength: 64 }).map((value) => Buffer.from(value));
  const frontendMessage: fc.Arbitrary<FrontendMessage> = fc.oneof(
    fc.record({
      type: fc.constant('StartupMessage' as const),
      protocolVersion: fc.constantFrom(196608, 196610, 196608 + 9999),
      parameters: fc
        .dictionary(
          text.filter((name) => name !== ''),
          text,
          { maxKeys: 6 },
        )
        .map((parameters) => Object.assign(Object.create(null) as Record<string, string>, parameters)),
    }),
    fc.constant({ type: 'SSLRequest' as const }),
    fc.constant({ type: 'GSSENCRequest' as const }),
    fc.record({
      type: fc.constant('CancelRequest' as const),
      processId: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
      secretKey: fc.uint8Array({ minLength: 4, maxLength: 256 }).map((key) => Buffer.from(key)),
    }),
    fc
      .uint8Array({ maxLength: 40 })
      .filter((password) => !password.includes(0))
      .map((password) => ({ type: 'PasswordMessage' as const, password: Buffer.from(password) })),
    fc.record({
      type: fc.constant('SASLInitialResponse' as const),
      mechanism: text,
      data: fc.option(bytes, { nil: null }),
    }),
    bytes.map((data) => ({ type: 'SASLResponse' as const, data })),
    fc.record({ type: fc.constant('Query' as const), sql: text }),
    fc.constant({ type: 'Terminate' as const }),
    bytes.map((data) => ({ type: 'CopyData' as const, data })),
    fc.constant({ type: 'CopyDone' as const }),
    fc.record({ type: fc.constant('CopyFail' as const), message: text }),
  );

  it('decode(encode(message)) equals the message', () => {
    fc.assert(
      fc.property(frontendMessage, (decoded) => {
        expect(decodeFrame(encodeFrontendMessage(decoded), decoded)).toEqual(decoded);
      }),
      { numRuns: 2000 },
    );
  });
});
