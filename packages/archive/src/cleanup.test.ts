import { describe, expect, it } from 'vitest';
import { ArchiveError, isRemovable, parseOldestKept, selectForCleanup } from './index.js';

/**
 * The cleanup decision over names. The oldest-kept names below were run through
 * pg_archivecleanup 15 (`-n`), which accepted or refused each as listed; the side-by-side test
 * on real directories is apps/cli/src/e2e/cleanup-comparison.integration.test.ts.
 */

const KEEP_10 = parseOldestKept('000000010000000000000010');

describe('parseOldestKept', () => {
  it.each([
    ['000000010000000000000010', '000000010000000000000010'],
    ['0000000A00000001000000FF', '0000000A00000001000000FF'],
    ['000000020000000000000010.partial', '000000020000000000000010'],
    ['000000010000000000000010.00000020.backup', '000000010000000000000010'],
    // sscanf("%08X") after the dot: one hex digit of either case, a sign or white space first,
    // and nothing checked after it, so each of these is a backup history file name to it.
    ['000000010000000000000010.backup', '000000010000000000000010'],
    ['000000010000000000000010.backup.backup', '000000010000000000000010'],
    ['000000010000000000000010.1garbage.backup', '000000010000000000000010'],
    ['000000010000000000000010.0xg.backup', '000000010000000000000010'],
    ['000000010000000000000010.-1.backup', '000000010000000000000010'],
    ['000000010000000000000010.-0xg.backup', '000000010000000000000010'],
    ['000000010000000000000010. 1.backup', '000000010000000000000010'],
    ['000000010000000000000010.\t1.backup', '000000010000000000000010'],
  ])('accepts %j, keeping %s', (argument, oldestKept) => {
    expect(parseOldestKept(argument)).toEqual({ oldestKept });
  });

  it.each([
    'bad',
    '',
    '00000001000000000000001',
    '00000001000000000000001a',
    '0000000100000000000000100',
    '00000002.history',
    '000000010000000000000010.gz',
    '000000010000000000000010.partial.partial',
    '000000010000000000000010.PARTIAL',
    '000000010000000000000010.zz.backup',
    '000000010000000000000010..backup',
    '000000010000000000000010.x.backup',
    '000000010000000000000010.x1.backup',
    '000000010000000000000010.+.backup',
    '000000010000000000000010.-.backup',
    '000000010000000000000010.g.backup',
    '0000000100000000000000100.backup',
    '000000010000000000000010x.backup',
    '../000000010000000000000010',
  ])('refuses %j as pg_archivecleanup does', (argument) => {
    const error = (() => {
      try {
        return parseOldestKept(argument);
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(ArchiveError);
    expect((error as ArchiveError).code).toBe('WAL_ERR_ARCHIVE_INVALID_NAME');
    expect((error as ArchiveError).message).toMatch(/^invalid file name argument "/);
  });

  it('trims the extension first, when the name is longer than it', () => {
    expect(parseOldestKept('000000010000000000000010.gz', '.gz')).toEqual({
      oldestKept: '000000010000000000000010',
      extension: '.gz',
    });
    expect(parseOldestKept('000000010000000000000010.partial.gz', '.gz').oldestKept).toBe(
      '000000010000000000000010',
    );
    expect(parseOldestKept('000000010000000000000010', '.gz').oldestKept).toBe('000000010000000000000010');
    expect(() => parseOldestKept('000000010000000000000010.lz4', '.gz')).toThrow(ArchiveError);
  });
});

describe('isRemovable without an extension: every form wal receive writes', () => {
  it.each([
    // Earlier positions go, on any timeline, in any compression, complete or partial.
    ['000000010000000000000001', true],
    ['00000001000000000000000F', true],
    ['00000002000000000000000F', true],
    ['0000000A000000000000000F', true],
    ['FFFFFFFF000000000000000F', true],
    ['000000010000000000000001.gz', true],
    ['000000010000000000000001.lz4', true],
    ['000000010000000000000001.zst', true],
    ['000000010000000000000001.partial', true],
    ['000000010000000000000001.gz.partial', true],
    ['000000010000000000000001.lz4.partial', true],
    ['000000010000000000000001.zst.partial', true],
    // The kept position and later stay, on any timeline.
    ['000000010000000000000010', false],
    ['000000000000000000000010', false],
    ['000000020000000000000010.partial', false],
    ['000000010000000000000010.gz', false],
    ['000000010000000000000011', false],
    ['000000010000000100000000', false],
    ['000000000000000000000020', false],
    // Never anything but a segment.
    ['00000001.history', false],
    ['00000002.history', false],
    ['000000010000000000000001.00000028.backup', false],
    ['000000010000000000000001.gz.tmp', false],
    ['000000010000000000000001.partial.gz', false],
    ['000000010000000000000001.bz2', false],
    ['00000001000000000000000f', false],
    ['00000001000000000000001', false],
    ['0000000100000000000000010', false],
    ['.000000010000000000000001', false],
    ['archive_status', false],
    ['', false],
  ])('%j: %s', (name, expected) => {
    expect(isRemovable(name, KEEP_10)).toBe(expected);
  });

  it('compares positions only: the timeline of the kept name does not matter', () => {
    const names = ['000000010000000000000001', '0000000A000000000000000F', '000000020000000000000010'];
    for (const kept of ['000000010000000000000010', '000000FF0000000000000010', '000000000000000000000010']) {
      expect(selectForCleanup(names, parseOldestKept(kept))).toEqual([
        '000000010000000000000001',
        '0000000A000000000000000F',
      ]);
    }
  });
});

describe('isRemovable with an extension: exactly pg_archivecleanup -x', () => {
  it.each([
    ['.gz', '000000010000000000000001.gz', true],
    ['.gz', '000000010000000000000001.partial.gz', true],
    // A name without the extension is judged as it is: plain and .partial names still go.
    ['.gz', '000000010000000000000001', true],
    ['.gz', '000000010000000000000001.partial', true],
    // Forms the trimmed name does not make a WAL file name stay.
    ['.gz', '000000010000000000000001.gz.partial', false],
    ['.gz', '000000010000000000000001.lz4', false],
    ['.gz', '000000010000000000000001.gz.gz', false],
    ['.gz', '000000010000000000000010.gz', false],
    ['.gz.partial', '000000010000000000000001.gz.partial', true],
    ['.gz.partial', '000000010000000000000001.gz', false],
    ['.partial', '000000010000000000000001.partial', true],
    ['.bz2', '000000010000000000000001.bz2', true],
    ['.bz2', '000000010000000000000001.zst', false],
    ['.gz', '00000001.history.gz', false],
    ['.gz', '000000010000000000000001.00000028.backup.gz', false],
    // An extension as long as the name is not trimmed.
    ['000000010000000000000001', '000000010000000000000001', true],
  ])('-x %j: %j: %s', (extension, name, expected) => {
    expect(isRemovable(name, parseOldestKept('000000010000000000000010', extension))).toBe(expected);
  });
});

describe('selectForCleanup', () => {
  it('selects from many names, oldest position first, and leaves the rest', () => {
    const names: string[] = [];
    for (let position = 0; position < 40; position += 1) {
      const hex = position.toString(16).toUpperCase().padStart(16, '0');
      for (const timeline of ['00000001', '00000002', '0000000A'])
        for (const suffix of ['', '.gz', '.lz4.partial', '.partial', '.tmp'])
          names.push(`${timeline}${hex}${suffix}`);
    }
    names.push('00000002.history', '0000000A.history', '000000010000000000000003.00000028.backup');
    const selected = selectForCleanup([...names].reverse(), KEEP_10);
    // 16 positions × 3 timelines × 4 segment forms (not .tmp).
    expect(selected).toHaveLength(16 * 3 * 4);
    expect(selected[0]).toBe('000000010000000000000000');
    expect(selected.at(-1)).toBe('0000000A000000000000000F.partial');
    const positions = selected.map((name) => name.slice(8, 24));
    expect(positions).toEqual([...positions].sort());
    const kept = new Set(names.filter((name) => !selected.includes(name)));
    for (const name of ['00000002.history', '0000000A.history', '000000010000000000000003.00000028.backup'])
      expect(kept.has(name)).toBe(true);
    expect(kept.has('00000002000000000000000F.tmp')).toBe(true);
    expect(kept.has('000000020000000000000010.lz4.partial')).toBe(true);
    expect(kept.has('00000002000000000000000F.lz4.partial')).toBe(false);
  });
});
