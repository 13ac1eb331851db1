import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from './errors.js';
import { formatLsn, parseLsn } from './lsn.js';

describe('parseLsn / formatLsn', () => {
  it.each<[string, bigint, string]>([
    ['0/0', 0n, '0/0'],
    ['0/700090', 0x700090n, '0/700090'],
    ['16/B374D848', 0x16_b374d848n, '16/B374D848'],
    ['16/b374d848', 0x16_b374d848n, '16/B374D848'],
    ['00000001/0000002A', 0x1_0000002an, '1/2A'],
    ['0/00000000', 0n, '0/0'],
    ['1/0', 0x1_00000000n, '1/0'],
    ['FFFFFFFF/FFFFFFFF', 0xffffffffffffffffn, 'FFFFFFFF/FFFFFFFF'],
  ])('%s is %s and prints as %s', (text, value, printed) => {
    expect(parseLsn(text)).toBe(value);
    expect(formatLsn(value)).toBe(printed);
  });

  it.each([
    '1/2/3',
    '123456789/0',
    '0/123456789',
    '',
    'G/0',
    ' 0/1',
    '0/1 ',
    '0x1/0',
    '-1/0',
    '/0',
    '0/',
    '0',
    '+1/0',
    '1\\0',
    '１/0',
  ])('rejects %j', (text) => {
    expect(() => parseLsn(text)).toThrow(ProtocolError);
    try {
      parseLsn(text);
    } catch (error) {
      expect((error as ProtocolError).code).toBe('WAL_ERR_PROTOCOL_INVALID_LSN');
      expect((error as ProtocolError).message).toContain(JSON.stringify(text));
    }
  });

  it('refuses to format values outside 0..2^64-1', () => {
    expect(() => formatLsn(-1n)).toThrow(/unsigned 64-bit/);
    expect(() => formatLsn(1n << 64n)).toThrow(ProtocolError);
  });

  it('round-trips every 64-bit value (fast-check)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 0xffffffffffffffffn }), (value) => {
        expect(parseLsn(formatLsn(value))).toBe(value);
        expect(parseLsn(formatLsn(value).toLowerCase())).toBe(value);
      }),
    );
  });
});
