import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../errors.js';
import { cstring, int8, int16, int32, message, payload, raw } from '../testing/naive-bytes.js';
import { type BackendMessage, decodeBackendMessage, encodeBackendMessage } from './backend-message.js';
import type { NoticeFields } from './notice-fields.js';

/** Splits a whole frame into code and payload after checking the length field. */
function unframe(frame: Buffer): { code: number; payload: Buffer } {
  expect(frame.readInt32BE(1)).toBe(frame.length - 1);
  return { code: frame[0]!, payload: frame.subarray(5) };
}

function roundTrip(decoded: BackendMessage): BackendMessage {
  const { code, payload: body } = unframe(encodeBackendMessage(decoded));
  return decodeBackendMessage(code, body);
}

function expectProtocolError(action: () => unknown, code: string, text?: string | RegExp): void {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  expect((caught as ProtocolError).code).toBe(code);
  if (text !== undefined) expect((caught as ProtocolError).message).toMatch(text);
}

const salt = Buffer.from([1, 2, 3, 4]);

/** Each case: a message, and its bytes built independently. */
const knownMessages: [string, BackendMessage, Buffer][] = [
  ['AuthenticationOk', { type: 'AuthenticationOk' }, message('R', int32(0))],
  ['AuthenticationCleartextPassword', { type: 'AuthenticationCleartextPassword' }, message('R', int32(3))],
  [
    'AuthenticationMD5Password',
    { type: 'AuthenticationMD5Password', salt },
    message('R', int32(5), raw(salt)),
  ],
  [
    'AuthenticationSASL',
    { type: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] },
    message('R', int32(10), cstring('SCRAM-SHA-256-PLUS'), cstring('SCRAM-SHA-256'), [0]),
  ],
  [
    'AuthenticationSASLContinue',
    { type: 'AuthenticationSASLContinue', data: Buffer.from('r=abc,s=c2FsdA==,i=4096') },
    message('R', int32(11), raw(Buffer.from('r=abc,s=c2FsdA==,i=4096'))),
  ],
  [
    'AuthenticationSASLFinal',
    { type: 'AuthenticationSASLFinal', data: Buffer.from('v=c2ln') },
    message('R', int32(12), raw(Buffer.from('v=c2ln'))),
  ],
  [
    'AuthenticationRequest (GSS)',
    { type: 'AuthenticationRequest', method: 7, data: Buffer.alloc(0) },
    message('R', int32(7)),
  ],
  [
    'AuthenticationRequest (GSSContinue with data)',
    { type: 'AuthenticationRequest', method: 8, data: Buffer.from([9, 9]) },
    message('R', int32(8), [9, 9]),
  ],
  [
    'ParameterStatus',
    { type: 'ParameterStatus', name: 'server_version', value: '15.18 (Debian)' },
    message('S', cstring('server_version'), cstring('15.18 (Debian)')),
  ],
  [
    'BackendKeyData 3.0',
    { type: 'BackendKeyData', processId: 4242, secretKey: Buffer.from([0xde, 0xad, 0xbe, 0xef]) },
    message('K', int32(4242), [0xde, 0xad, 0xbe, 0xef]),
  ],
  [
    'BackendKeyData 3.2 (32-byte key)',
    { type: 'BackendKeyData', processId: 7, secretKey: Buffer.alloc(32, 0xab) },
    message('K', int32(7), new Array(32).fill(0xab)),
  ],
  ['ReadyForQuery', { type: 'ReadyForQuery', transactionStatus: 'I' }, message('Z', int8(0x49))],
  [
    'RowDescription',
    {
      type: 'RowDescription',
      fields: [
        {
          name: 'systemid',
          tableOid: 0,
          columnNumber: 0,
          typeOid: 25,
          typeSize: -1,
          typeModifier: -1,
          format: 0,
        },
        {
          name: 'timeline',
          tableOid: 4_000_000_000,
          columnNumber: 2,
          typeOid: 23,
          typeSize: 4,
          typeModifier: -1,
          format: 1,
        },
      ],
    },
    message(
      'T',
      int16(2),
      cstring('systemid'),
      int32(0),
      int16(0),
      int32(25),
      int16(-1),
      int32(-1),
      int16(0),
      cstring('timeline'),
      int32(4_000_000_000),
      int16(2),
      int32(23),
      int16(4),
      int32(-1),
      int16(1),
    ),
  ],
  [
    'DataRow',
    { type: 'DataRow', values: [Buffer.from('7182'), null, Buffer.alloc(0)] },
    message('D', int16(3), int32(4), raw(Buffer.from('7182')), int32(-1), int32(0)),
  ],
  [
    'CommandComplete',
    { type: 'CommandComplete', tag: 'IDENTIFY_SYSTEM' },
    message('C', cstring('IDENTIFY_SYSTEM')),
  ],
  ['EmptyQueryResponse', { type: 'EmptyQueryResponse' }, message('I')],
  [
    'CopyBothResponse',
    { type: 'CopyBothResponse', format: 0, columnFormats: [] },
    message('W', int8(0), int16(0)),
  ],
  [
    'CopyOutResponse',
    { type: 'CopyOutResponse', format: 1, columnFormats: [1, 0] },
    message('H', int8(1), int16(2), int16(1), int16(0)),
  ],
  [
    'CopyInResponse',
    { type: 'CopyInResponse', format: 0, columnFormats: [0] },
    message('G', int8(0), int16(1), int16(0)),
  ],
  ['CopyData', { type: 'CopyData', data: Buffer.from([0x77, 1, 2]) }, message('d', [0x77, 1, 2])],
  ['CopyDone', { type: 'CopyDone' }, message('c')],
  [
    'NegotiateProtocolVersion',
    {
      type: 'NegotiateProtocolVersion',
      newestMinorVersion: 2,
      unrecognizedOptions: ['_pq_.test_protocol_negotiation'],
    },
    message('v', int32(196610), int32(1), cstring('_pq_.test_protocol_negotiation')),
  ],
];

describe('backend messages against independently built bytes', () => {
  it.each(knownMessages)('%s encodes to the expected bytes', (_name, decoded, bytes) => {
    expect(encodeBackendMessage(decoded)).toEqual(bytes);
  });

  it.each(knownMessages)('%s decodes from the expected bytes', (_name, decoded, bytes) => {
    expect(decodeBackendMessage(bytes[0]!, bytes.subarray(5))).toEqual(decoded);
  });
});

describe('ErrorResponse and NoticeResponse', () => {
  const everyField: NoticeFields = {
    severity: 'FEHLER',
    severityNonLocalized: 'ERROR',
    code: '42704',
    message: 'replication slot "s1" does not exist',
    detail: 'detail text',
    hint: 'hint text',
    position: '12',
    internalPosition: '3',
    internalQuery: 'SELECT 1',
    where: 'PL/pgSQL function f()',
    schema: 'public',
    table: 't',
    column: 'c',
    dataType: 'int4',
    constraint: 't_pkey',
    file: 'slot.c',
    line: '513',
    routine: 'ReplicationSlotAcquire',
  };
  const everyFieldBytes = [
    [0x53, ...cstring('FEHLER')],
    [0x56, ...cstring('ERROR')],
    [0x43, ...cstring('42704')],
    [0x4d, ...cstring('replication slot "s1" does not exist')],
    [0x44, ...cstring('detail text')],
    [0x48, ...cstring('hint text')],
    [0x50, ...cstring('12')],
    [0x70, ...cstring('3')],
    [0x71, ...cstring('SELECT 1')],
    [0x57, ...cstring('PL/pgSQL function f()')],
    [0x73, ...cstring('public')],
    [0x74, ...cstring('t')],
    [0x63, ...cstring('c')],
    [0x64, ...cstring('int4')],
    [0x6e, ...cstring('t_pkey')],
    [0x46, ...cstring('slot.c')],
    [0x4c, ...cstring('513')],
    [0x52, ...cstring('ReplicationSlotAcquire')],
    [0],
  ];

  it('encodes every field with its code', () => {
    expect(encodeBackendMessage({ type: 'ErrorResponse', fields: everyField })).toEqual(
      message('E', ...everyFieldBytes),
    );
    expect(encodeBackendMessage({ type: 'NoticeResponse', fields: everyField })).toEqual(
      message('N', ...everyFieldBytes),
    );
  });

  it('decodes every field, in any order, and keeps unknown codes', () => {
    const bytes = payload(
      [0x4d, ...cstring('boom')],
      [0x5a, ...cstring('future field')],
      [0x43, ...cstring('XX000')],
      [0x53, ...cstring('FATAL')],
      [0x52, ...cstring('routine')],
      [0],
    );
    const decoded = decodeBackendMessage(0x45, bytes);
    expect(decoded).toEqual({
      type: 'ErrorResponse',
      fields: {
        severity: 'FATAL',
        code: 'XX000',
        message: 'boom',
        routine: 'routine',
        unknown: { Z: 'future field' },
      },
    });
    expect(roundTrip(decoded)).toEqual(decoded);
  });

  it('reads missing S, C and M as empty strings rather than losing the rest', () => {
    expect(decodeBackendMessage(0x4e, payload([0x44, ...cstring('only detail')], [0]))).toEqual({
      type: 'NoticeResponse',
      fields: { severity: '', code: '', message: '', detail: 'only detail' },
    });
  });

  it('keeps a field code named like an Object.prototype key harmless', () => {
    const decoded = decodeBackendMessage(0x45, payload([0x5f, ...cstring('x')], [0]));
    expect(decoded.type === 'ErrorResponse' && decoded.fields.unknown?._).toBe('x');
  });

  it('rejects a field without its terminator and a missing list terminator', () => {
    expectProtocolError(
      () => decodeBackendMessage(0x45, payload([0x53], ascii('ERROR'))),
      'WAL_ERR_PROTOCOL_UNTERMINATED_STRING',
      /ErrorResponse is malformed: field 'S'/,
    );
    expectProtocolError(
      () => decodeBackendMessage(0x45, payload([0x53, ...cstring('ERROR')])),
      'WAL_ERR_PROTOCOL_MESSAGE_TRUNCATED',
      /ErrorResponse is truncated/,
    );
    expectProtocolError(
      () => decodeBackendMessage(0x45, payload([0x53, ...cstring('ERROR')], [0, 1])),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /trailing/,
    );
  });
});

function ascii(text: string): number[] {
  return Array.from(Buffer.from(text, 'latin1'));
}

describe('backend decoders reject bad input with a coded error', () => {
  const cases: [string, number, Buffer, string, RegExp][] = [
    [
      'AuthenticationOk with extra bytes',
      0x52,
      payload(int32(0), [1]),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /AuthenticationOk must be 4 bytes, got 5/,
    ],
    [
      'Authentication without a code',
      0x52,
      payload([0, 0]),
      'WAL_ERR_PROTOCOL_MESSAGE_TRUNCATED',
      /authentication code/,
    ],
    [
      'MD5 with a short salt',
      0x52,
      payload(int32(5), [1, 2]),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /AuthenticationMD5Password must be 8 bytes, got 6/,
    ],
    [
      'SASL list without the empty terminator',
      0x52,
      payload(int32(10), cstring('SCRAM-SHA-256')),
      'WAL_ERR_PROTOCOL_UNTERMINATED_STRING',
      /AuthenticationSASL/,
    ],
    [
      'SASL list with trailing bytes',
      0x52,
      payload(int32(10), cstring('SCRAM-SHA-256'), [0, 7]),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /trailing/,
    ],
    [
      'ParameterStatus without a value',
      0x53,
      payload(cstring('a')),
      'WAL_ERR_PROTOCOL_UNTERMINATED_STRING',
      /parameter value/,
    ],
    [
      'BackendKeyData with a 3-byte key',
      0x4b,
      payload(int32(1), [1, 2, 3]),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /secret key must be 4 to 256 bytes, got 3/,
    ],
    [
      'BackendKeyData with a 257-byte key',
      0x4b,
      payload(int32(1), new Array(257).fill(1)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /got 257/,
    ],
    [
      'BackendKeyData without a pid',
      0x4b,
      payload([1, 2]),
      'WAL_ERR_PROTOCOL_MESSAGE_TRUNCATED',
      /process id/,
    ],
    [
      'ReadyForQuery with a bad status',
      0x5a,
      payload([0x58]),
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      /transaction status/,
    ],
    [
      'ReadyForQuery empty',
      0x5a,
      payload(),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /ReadyForQuery must be 1 bytes, got 0/,
    ],
    [
      'RowDescription with a negative count',
      0x54,
      payload(int16(-1)),
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      /-1 fields/,
    ],
    [
      'RowDescription with too many fields',
      0x54,
      payload(int16(3), cstring('a'), new Array(18).fill(0)),
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      /3 fields/,
    ],
    [
      'RowDescription with a truncated field',
      0x54,
      payload(int16(1), cstring('abcdefghijklmnopqrstuvwxyz'), [0, 0]),
      'WAL_ERR_PROTOCOL_MESSAGE_TRUNCATED',
      /RowDescription is truncated/,
    ],
    [
      'DataRow with a column longer than the message',
      0x44,
      payload(int16(1), int32(10), [1, 2]),
      'WAL_ERR_PROTOCOL_MESSAGE_TRUNCATED',
      /column 0 needs 10 bytes/,
    ],
    [
      'DataRow with length -2',
      0x44,
      payload(int16(1), int32(-2)),
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      /invalid length -2/,
    ],
    [
      'DataRow announcing more columns than fit',
      0x44,
      payload(int16(1000), int32(0)),
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      /1000 columns/,
    ],
    [
      'DataRow with trailing bytes',
      0x44,
      payload(int16(0), [1]),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /trailing/,
    ],
    [
      'CommandComplete unterminated',
      0x43,
      payload(ascii('SELECT 1')),
      'WAL_ERR_PROTOCOL_UNTERMINATED_STRING',
      /command tag/,
    ],
    [
      'EmptyQueryResponse with bytes',
      0x49,
      payload([0]),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /EmptyQueryResponse must be 0 bytes, got 1/,
    ],
    [
      'CopyBothResponse with a missing column format',
      0x57,
      payload(int8(0), int16(2), int16(0)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /CopyBothResponse announces 2 columns, so it must be 7 bytes, got 5/,
    ],
    [
      'CopyOutResponse with a negative count',
      0x48,
      payload(int8(0), int16(-1)),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /-1 columns/,
    ],
    [
      'CopyDone with bytes',
      0x63,
      payload([1]),
      'WAL_ERR_PROTOCOL_MESSAGE_LENGTH',
      /CopyDone must be 0 bytes, got 1/,
    ],
    [
      'NegotiateProtocolVersion with a huge count',
      0x76,
      payload(int32(0), int32(0x7fffffff)),
      'WAL_ERR_PROTOCOL_INVALID_FIELD',
      /NegotiateProtocolVersion is malformed/,
    ],
    [
      'NegotiateProtocolVersion with a missing option',
      0x76,
      payload(int32(196608), int32(2), cstring('_pq_.a')),
      'WAL_ERR_PROTOCOL_UNTERMINATED_STRING',
      /an option name at offset 15/,
    ],
    [
      'an unknown code',
      0x41,
      payload(),
      'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE',
      /Unexpected backend message type 'A'/,
    ],
    ['an unprintable code', 0x01, payload(), 'WAL_ERR_PROTOCOL_UNKNOWN_MESSAGE', /type 0x01/],
  ];

  it.each(cases)('%s', (_name, code, bytes, errorCode, text) => {
    expectProtocolError(() => decodeBackendMessage(code, bytes), errorCode, text);
  });
});

describe('backend encoders refuse values that cannot be sent', () => {
  it.each<[string, BackendMessage, RegExp]>([
    [
      'an MD5 salt of 3 bytes',
      { type: 'AuthenticationMD5Password', salt: Buffer.alloc(3) },
      /salt must be 4 bytes/,
    ],
    ['an empty SASL mechanism', { type: 'AuthenticationSASL', mechanisms: [''] }, /cannot be empty/],
    [
      'an AuthenticationRequest with a dedicated code',
      { type: 'AuthenticationRequest', method: 10, data: Buffer.alloc(0) },
      /own message type/,
    ],
    ['a NUL inside a string', { type: 'CommandComplete', tag: 'A\0B' }, /NUL/],
    [
      'a 2-byte cancel key',
      { type: 'BackendKeyData', processId: 1, secretKey: Buffer.alloc(2) },
      /4 to 256 bytes, got 2/,
    ],
    [
      'an out-of-range Int16',
      { type: 'CopyOutResponse', format: 0, columnFormats: [70000] },
      /Int16 value 70000/,
    ],
    [
      'a fractional Int32',
      { type: 'BackendKeyData', processId: 1.5, secretKey: Buffer.alloc(4) },
      /Int32 value 1.5/,
    ],
    [
      'a NegotiateProtocolVersion minor above 65535',
      { type: 'NegotiateProtocolVersion', newestMinorVersion: 0x10000, unrecognizedOptions: [] },
      /minor version must be 0 to 65535, got 65536/,
    ],
  ])('%s', (_name, decoded, text) => {
    expect(() => encodeBackendMessage(decoded)).toThrow(text);
    expect(() => encodeBackendMessage(decoded)).toThrow(ProtocolError);
  });
});

describe('backend round trips (fast-check)', () => {
  const text = fc.string({ unit: 'grapheme', maxLength: 20 }).filter((value) => !value.includes('\0'));
  const bytes = fc.uint8Array({ maxLength: 64 }).map((value) => Buffer.from(value));
  const int16Value = fc.integer({ min: -0x8000, max: 0x7fff });
  const uint32Value = fc.integer({ min: 0, max: 0xffffffff });
  const int32Value = fc.integer({ min: -0x80000000, max: 0x7fffffff });
  const optionalText = fc.option(text, { nil: undefined });
  const noticeFields = fc
    .record({
      severity: text,
      severityNonLocalized: optionalText,
      code: text,
      message: text,
      detail: optionalText,
      hint: optionalText,
      position: optionalText,
      where: optionalText,
      routine: optionalText,
      unknown: fc.option(fc.dictionary(fc.constantFrom('Z', 'X', 'Y', 'a'), text, { minKeys: 1 }), {
        nil: undefined,
      }),
    })
    .map((fields) => {
      const copy: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(fields)) if (value !== undefined) copy[key] = value;
      return copy as unknown as NoticeFields;
    });

  const backendMessage: fc.Arbitrary<BackendMessage> = fc.oneof(
    fc.constant({ type: 'AuthenticationOk' as const }),
    fc.constant({ type: 'AuthenticationCleartextPassword' as const }),
    fc
      .uint8Array({ minLength: 4, maxLength: 4 })
      .map((salt) => ({ type: 'AuthenticationMD5Password' as const, salt: Buffer.from(salt) })),
    fc
      .array(
        text.filter((value) => value !== ''),
        { maxLength: 4 },
      )
      .map((mechanisms) => ({ type: 'AuthenticationSASL' as const, mechanisms })),
    bytes.map((data) => ({ type: 'AuthenticationSASLContinue' as const, data })),
    bytes.map((data) => ({ type: 'AuthenticationSASLFinal' as const, data })),
    fc.record({
      type: fc.constant('AuthenticationRequest' as const),
      method: uint32Value.filter((method) => ![0, 3, 5, 10, 11, 12].includes(method)),
      data: bytes,
    }),
    fc.record({ type: fc.constant('ParameterStatus' as const), name: text, value: text }),
    fc.record({
      type: fc.constant('BackendKeyData' as const),
      processId: int32Value,
      secretKey: fc.uint8Array({ minLength: 4, maxLength: 256 }).map((key) => Buffer.from(key)),
    }),
    fc.record({
      type: fc.constant('ReadyForQuery' as const),
      transactionStatus: fc.constantFrom('I' as const, 'T' as const, 'E' as const),
    }),
    fc.record({
      type: fc.constant('RowDescription' as const),
      fields: fc.array(
        fc.record({
          name: text,
          tableOid: uint32Value,
          columnNumber: int16Value,
          typeOid: uint32Value,
          typeSize: int16Value,
          typeModifier: int32Value,
          format: int16Value,
        }),
        { maxLength: 5 },
      ),
    }),
    fc.record({
      type: fc.constant('DataRow' as const),
      values: fc.array(fc.option(bytes, { nil: null }), { maxLength: 6 }),
    }),
    fc.record({ type: fc.constant('CommandComplete' as const), tag: text }),
    fc.constant({ type: 'EmptyQueryResponse' as const }),
    fc.record({ type: fc.constant('ErrorResponse' as const), fields: noticeFields }),
    fc.record({ type: fc.constant('NoticeResponse' as const), fields: noticeFields }),
    fc.record({
      type: fc.constantFrom(
        'CopyBothResponse' as const,
        'CopyOutResponse' as const,
        'CopyInResponse' as const,
      ),
      format: fc.integer({ min: 0, max: 1 }),
      columnFormats: fc.array(fc.integer({ min: 0, max: 1 }), { maxLength: 5 }),
    }),
    bytes.map((data) => ({ type: 'CopyData' as const, data })),
    fc.constant({ type: 'CopyDone' as const }),
    fc.record({
      type: fc.constant('NegotiateProtocolVersion' as const),
      newestMinorVersion: fc.integer({ min: 0, max: 0xffff }),
      unrecognizedOptions: fc.array(text, { maxLength: 4 }),
    }),
  );

  it('decode(encode(message)) equals the message', () => {
    fc.assert(
      fc.property(backendMessage, (decoded) => {
        expect(roundTrip(decoded)).toEqual(decoded);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('decoded byte fields are views of the payload, not copies', () => {
  it('DataRow values and CopyData data share memory with the payload', () => {
    const frame = message('D', int16(1), int32(3), [7, 8, 9]);
    const decoded = decodeBackendMessage(frame[0]!, frame.subarray(5));
    if (decoded.type !== 'DataRow') throw new Error('expected a DataRow');
    expect(decoded.values[0]!.buffer).toBe(frame.buffer);
    const copy = message('d', [1, 2, 3]);
    const copyData = decodeBackendMessage(copy[0]!, copy.subarray(5));
    expect(copyData.type === 'CopyData' && copyData.data.buffer === copy.buffer).toBe(true);
  });
});
