import { describe, expect, it } from 'vitest';
import { receiveFastPathArguments } from './fast-path.js';

describe('receiveFastPathArguments', () => {
  it('takes `receive` with its arguments, minus the command name', () => {
    expect(receiveFastPathArguments(['receive'])).toEqual([]);
    expect(receiveFastPathArguments(['receive', '-D', 'wal', '--endpos=0/3000000', '-V'])).toEqual([
      '-D',
      'wal',
      '--endpos=0/3000000',
      '-V',
    ]);
    expect(receiveFastPathArguments(['receive', '--version'])).toEqual(['--version']);
    expect(receiveFastPathArguments(['receive', '-?'])).toEqual(['-?']);
  });

  it('leaves every other command line to oclif', () => {
    expect(receiveFastPathArguments([])).toBeUndefined();
    expect(receiveFastPathArguments(['--help'])).toBeUndefined();
    expect(receiveFastPathArguments(['--version'])).toBeUndefined();
    expect(receiveFastPathArguments(['demo'])).toBeUndefined();
    expect(receiveFastPathArguments(['receiver'])).toBeUndefined();
    expect(receiveFastPathArguments(['help', 'receive'])).toBeUndefined();
    expect(receiveFastPathArguments(['-D', 'wal', 'receive'])).toBeUndefined();
  });

  it('leaves `--help` before `--` to oclif, which answers it anywhere on the line', () => {
    expect(receiveFastPathArguments(['receive', '--help'])).toBeUndefined();
    expect(receiveFastPathArguments(['receive', '-D', 'wal', '--help'])).toBeUndefined();
    expect(receiveFastPathArguments(['receive', '--', '--help'])).toEqual(['--', '--help']);
    // Only the exact flag: `-h` is pg_receivewal's host, and `--help=x` is not oclif's flag.
    expect(receiveFastPathArguments(['receive', '-h', 'db1'])).toEqual(['-h', 'db1']);
    expect(receiveFastPathArguments(['receive', '--help=x'])).toEqual(['--help=x']);
  });
});
