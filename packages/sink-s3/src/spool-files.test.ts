import { describe, expect, it } from 'vitest';
import { compareUploadOrder, historyFile, type SpoolFile, segmentFile, startLsnOf } from './spool-files.js';

const SEGMENT_SIZE = 16 * 1024 * 1024;

function file(name: string): SpoolFile {
  const parsed = historyFile(name) ?? segmentFile(name, SEGMENT_SIZE);
  if (parsed === undefined) throw new Error(`not a spool file: ${name}`);
  return parsed;
}

describe('spool files', () => {
  it('recognises history files, complete segments and .partial files, compressed or not', () => {
    expect(file('00000002.history')).toEqual({
      name: '00000002.history',
      kind: 'history',
      timeline: 2,
      segmentNumber: -1n,
    });
    expect(file('000000010000000A0000001F.gz')).toMatchObject({
      kind: 'segment',
      timeline: 1,
      segmentNumber: 0xa1fn,
    });
    expect(file('000000010000000000000003.lz4.partial')).toMatchObject({
      kind: 'partial',
      segmentNumber: 3n,
    });
    for (const other of [
      '00000002.history.tmp',
      '000000010000000000000003.partial.tmp',
      'README',
      '0000000A.HISTORY',
    ])
      expect(historyFile(other) ?? segmentFile(other, SEGMENT_SIZE)).toBeUndefined();
  });

  it('orders uploads by timeline, its history file first, then its segments by number', () => {
    const names = [
      '000000020000000000000005',
      '000000010000000000000005.partial',
      '00000002.history',
      '000000010000000000000004',
      '000000020000000000000006.gz',
      '000000010000000000000003',
    ];
    expect(
      names
        .map(file)
        .sort(compareUploadOrder)
        .map((spool) => spool.name),
    ).toEqual([
      '000000010000000000000003',
      '000000010000000000000004',
      '000000010000000000000005.partial',
      '00000002.history',
      '000000020000000000000005',
      '000000020000000000000006.gz',
    ]);
  });

  it('knows where a file starts in the WAL', () => {
    expect(startLsnOf(file('000000010000000100000002'), SEGMENT_SIZE)).toBe(0x1_0200_0000n);
    expect(startLsnOf(file('00000003.history'), SEGMENT_SIZE)).toBe(0n);
  });
});
