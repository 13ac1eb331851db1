import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../errors.js';
import { cstring, int8, int16, int32, int64, message, untypedMessage } from '../testing/naive-bytes.js';
import { MessageReader } from './reader.js';
import { MessageWriter } from './writer.js';

describe('MessageWriter', () => {
  it('reserves the header and patches the length at finish', () => {
    const frame = new MessageWriter(1)
      .int8(-1)
      .int16(-2)
      .int16(0xfffe)
      .int32(-3)
      .int32(0xfffffffd)
      .int64(-4n)
      .int64(0xfffffffffffffffcn)
      .cstring('héllo')
      .string('x')
      .finish(0x51);
    expect(frame).toEqual(
      message(
        'Q',
        int8(-1),
        int16(-2),
        int16(-2),
        int32(-3),
        int32(-3),
        int64(-4n),
        int64(-4n),
        cstring('héllo'),
        [0x78],
      ),
    );
  });

  it('grows past its initial capacity without losing bytes', () => {
    const writer = new MessageWriter(2);
    const body = Buffer.alloc(10_000, 7);
    expect(writer.int32(1).bytes(body).bodyLength).toBe(10_004);
    expect(writer.finish(0x64)).toEqual(message('d', int32(1), Array.from(body)));
  });

  it('finishes an untyped packet with the length first', () => {
    expect(new MessageWriter().int32(80877103).finishUntyped()).toEqual(untypedMessage(int32(80877103)));
  });

  it('never reuses a finished message for the next one', () => {
    const writer = new MessageWriter();
    const first = writer.cstring('first').finish(0x51);
    const copy = Buffer.from(first);
    const second = writer.cstring('second message').finish(0x51);
    expect(first).toEqual(copy);
    expect(second).toEqual(message('Q', cstring('second message')));
    expect(writer.finish(0x63)).toEqual(message('c'));
  });

  it.each<[string, (writer: MessageWriter) => unknown, RegExp]>([
    ['an Int8 above 255', (writer) => writer.int8(256), /Int8 value 256/],
    ['an Int16 below -32768', (writer) => writer.int16(-32769), /Int16/],
    ['a fractional Int32', (writer) => writer.int32(0.5), /Int32 value 0.5/],
    ['an Int32 above 2^32-1', (writer) => writer.int32(2 ** 32), /Int32/],
    ['an Int64 above 2^64-1', (writer) => writer.int64(1n << 64n), /Int64/],
    ['a NUL in a cstring', (writer) => writer.cstring('a\0'), /NUL character/],
    ['a NUL in cstring bytes', (writer) => writer.cstringBytes(Buffer.from([0])), /NUL byte/],
  ])('refuses %s', (_name, write, text) => {
    const writer = new MessageWriter();
    expect(() => write(writer)).toThrow(ProtocolError);
    expect(() => write(new MessageWriter())).toThrow(text);
  });
});

describe('MessageReader', () => {
  const bytes = Buffer.from([...int16(-2), ...int32(-3), ...int64(-4n), ...cstring('ab'), 9, 8]);

  it('reads every field type and views', () => {
    const reader = new MessageReader(bytes, 'Test');
    expect(reader.int16()).toBe(-2);
    expect(reader.int32()).toBe(-3);
    expect(reader.position).toBe(6);
    expect(reader.uint64()).toBe(0xfffffffffffffffcn);
    expect(reader.cstring()).toBe('ab');
    expect(reader.remaining).toBe(2);
    const rest = reader.bytes(2);
    expect(rest.buffer).toBe(bytes.buffer);
    reader.end();
  });

  it('names the message, the field and the sizes when a read runs past the end', () => {
    const reader = new MessageReader(Buffer.from([1, 2]), 'DataRow');
    expect(() => reader.int32('the column count')).toThrow(
      'DataRow is truncated: the column count needs 4 bytes at offset 0, but the payload has 2 bytes',
    );
    expect(() => new MessageReader(Buffer.from([1]), 'X').cstring('a name')).toThrow(
      /a name at offset 0 has no terminating NUL/,
    );
    expect(() => new MessageReader(Buffer.from([1]), 'X').bytes(-1)).toThrow(/invalid length -1/);
    expect(() => new MessageReader(Buffer.from([1]), 'X').end()).toThrow(/1 unexpected trailing bytes/);
  });
});
