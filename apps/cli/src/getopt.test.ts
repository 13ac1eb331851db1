import { describe, expect, it } from 'vitest';
import { getoptLong, type LongOption } from './getopt.js';

const LONG: LongOption[] = [
  { name: 'directory', argument: 'required', key: 'D' },
  { name: 'no-loop', argument: 'none', key: 'n' },
  { name: 'no-sync', argument: 'none', key: 'no-sync' },
  { name: 'slot', argument: 'required', key: 'S' },
  { name: 'status-interval', argument: 'required', key: 's' },
  { name: 'synchronous', argument: 'none', key: 'synchronous' },
  { name: 'trace', argument: 'optional', key: 'trace' },
];
const SHORT = 'D:ns:S:vZ:';

function parse(...argv: string[]) {
  return getoptLong(argv, SHORT, LONG);
}

function options(...argv: string[]) {
  return parse(...argv).items.map((item) =>
    item.kind === 'option' ? [item.key, item.value] : ['complaint', item.message],
  );
}

describe('getoptLong', () => {
  it('reads short options with separate and attached values', () => {
    expect(options('-D', 'dir', '-Z5', '-s', '0')).toEqual([
      ['D', 'dir'],
      ['Z', '5'],
      ['s', '0'],
    ]);
  });

  it('reads clusters of flags, ending at a letter that takes a value', () => {
    expect(options('-nvvDdir')).toEqual([
      ['n', undefined],
      ['v', undefined],
      ['v', undefined],
      ['D', 'dir'],
    ]);
    expect(options('-vD', 'dir')).toEqual([
      ['v', undefined],
      ['D', 'dir'],
    ]);
  });

  it('reads long options with = or a separate value, and a value that starts with a dash', () => {
    expect(options('--directory=/tmp/x', '--slot', '-weird-', '--directory=')).toEqual([
      ['D', '/tmp/x'],
      ['S', '-weird-'],
      ['D', ''],
    ]);
  });

  it('permutes: options after operands are still options, operands keep their order', () => {
    const result = parse('one', '-n', 'two', '--slot', 's');
    expect(result.operands).toEqual(['one', 'two']);
    expect(result.items).toHaveLength(2);
  });

  it('stops at -- and treats a lone - as an operand', () => {
    const result = parse('-n', '-', '--', '-v', '--slot');
    expect(result.operands).toEqual(['-', '-v', '--slot']);
    expect(options('-n', '--', '-v')).toEqual([['n', undefined]]);
  });

  it('accepts unique prefixes of long options and prefers an exact match', () => {
    expect(options('--dir', 'x', '--no-l', '--sl', 'a')).toEqual([
      ['D', 'x'],
      ['n', undefined],
      ['S', 'a'],
    ]);
  });

  it('refuses ambiguous prefixes listing the possibilities', () => {
    expect(options('--no')).toEqual([
      ['complaint', "option '--no' is ambiguous; possibilities: '--no-loop' '--no-sync'"],
    ]);
    expect(options('--s=1')).toEqual([
      ['complaint', "option '--s' is ambiguous; possibilities: '--slot' '--status-interval' '--synchronous'"],
    ]);
  });

  it('complains like glibc about unknown options and missing or unwanted values', () => {
    expect(options('--bogus')).toEqual([['complaint', "unrecognized option '--bogus'"]]);
    expect(options('--bogus=1')).toEqual([['complaint', "unrecognized option '--bogus=1'"]]);
    expect(options('-x')).toEqual([['complaint', "invalid option -- 'x'"]]);
    expect(options('-?')).toEqual([['complaint', "invalid option -- '?'"]]);
    expect(options('-D')).toEqual([['complaint', "option requires an argument -- 'D'"]]);
    expect(options('--directory')).toEqual([['complaint', "option '--directory' requires an argument"]]);
    expect(options('--no-loop=yes')).toEqual([['complaint', "option '--no-loop' doesn't allow an argument"]]);
  });

  it('gives an optional-argument long option its value only when attached', () => {
    expect(options('--trace', 'file', '--trace=out.log')).toEqual([
      ['trace', undefined],
      ['trace', 'out.log'],
    ]);
    expect(parse('--trace', 'file').operands).toEqual(['file']);
  });

  it('keeps complaints in command-line order among the options', () => {
    expect(options('-n', '--bogus', '-v').map(([key]) => key)).toEqual(['n', 'complaint', 'v']);
  });
});
