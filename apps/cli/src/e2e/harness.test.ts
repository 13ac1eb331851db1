import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import {
  compareDirectories,
  comparePartialWithPgWal,
  compareWithPgWal,
  lsnFromText,
  lsnToText,
  removeDirectory,
  seededRandom,
  segmentStartOf,
  temporaryDirectory,
  walFileContents,
  walFileNameOf,
} from './harness.js';

/** The acceptance suite's oracles must be able to fail: checked here against hand-made inputs. */

const MB = 1024 * 1024;
const directories: string[] = [];

function directory(files: Record<string, Buffer | string>): string {
  const path = temporaryDirectory('harness');
  directories.push(path);
  for (const [name, contents] of Object.entries(files)) writeFileSync(join(path, name), contents);
  return path;
}

afterEach(() => {
  for (const path of directories.splice(0)) removeDirectory(path);
});

describe('LSNs and WAL file names', () => {
  it('parses and prints LSNs as PostgreSQL does up to 18', () => {
    expect(lsnFromText('16/B374D848')).toBe(0x16b374d848n);
    expect(lsnFromText('0/0')).toBe(0n);
    expect(lsnToText(0x700090n)).toBe('0/700090');
    expect(lsnToText(0x16b374d848n)).toBe('16/B374D848');
    expect(() => lsnFromText('1/2/3')).toThrow(/not an LSN/);
  });

  it('names segments as XLogFileName does', () => {
    expect(walFileNameOf(1, 0x3000060n, 16 * MB)).toBe('000000010000000000000003');
    expect(walFileNameOf(2, 0xb00130n, MB)).toBe('00000002000000000000000B');
    expect(walFileNameOf(2, 0x1_00b0_0130n, MB)).toBe('00000002000000010000000B');
    expect(segmentStartOf(0x930cf8n, MB)).toBe(0x900000n);
  });
});

describe('directory comparison', () => {
  it('finds names present on one side only and the first differing byte', () => {
    const left = directory({ a: 'same', b: Buffer.from([1, 2, 3]), only_left: '' });
    const right = directory({ a: 'same', b: Buffer.from([1, 9, 3]), only_right: '' });
    const differences = compareDirectories(left, right);
    expect(differences).toHaveLength(3);
    expect(differences.join('\n')).toMatch(/only in .*: only_left/);
    expect(differences.join('\n')).toMatch(/only in .*: only_right/);
    expect(differences.join('\n')).toMatch(/b differs: first difference at byte 1/);
    expect(compareDirectories(left, left)).toEqual([]);
  });

  it('compares completed segments with pg_wal and reports missing ones', () => {
    const segment = Buffer.alloc(64, 7);
    const server = directory({ '000000010000000000000003': segment });
    const ours = directory({ '000000010000000000000003': segment, '000000010000000000000004': segment });
    const { compared, differences } = compareWithPgWal(ours, server);
    expect(compared).toEqual(['000000010000000000000003']);
    expect(differences).toEqual(["000000010000000000000004: not in the server's pg_wal (ENOENT)"]);
  });

  it('checks a .partial: server bytes up to the end position, zero padding after the data', () => {
    const serverBytes = Buffer.alloc(4096, 0xab);
    serverBytes.fill(0, 1000, 1008); // WAL has zero bytes of its own (alignment)
    const server = directory({ segment: serverBytes });
    const partial = Buffer.alloc(4096);
    serverBytes.copy(partial, 0, 0, 2000);
    expect(comparePartialWithPgWal(partial, join(server, 'segment'), 1500)).toEqual([]);
    expect(comparePartialWithPgWal(partial, join(server, 'segment'), 1004)).toEqual([]);
    // Data missing before the end position: the zeros there differ from the server.
    expect(comparePartialWithPgWal(partial, join(server, 'segment'), 2500)).toHaveLength(1);
    const corrupt = Buffer.from(partial);
    corrupt[10] = 0;
    expect(comparePartialWithPgWal(corrupt, join(server, 'segment'), 1500)).toHaveLength(1);
    // A compressed partial holds only the received bytes: shorter than the end position fails.
    expect(comparePartialWithPgWal(partial.subarray(0, 1200), join(server, 'segment'), 1500)).toHaveLength(1);
  });

  it('reads gzip files by their suffix', () => {
    const contents = Buffer.from('wal bytes');
    const path = directory({ 'x.gz.partial': gzipSync(contents) });
    expect(walFileContents(join(path, 'x.gz.partial'))).toEqual(contents);
  });
});

describe('seededRandom', () => {
  it('repeats its sequence for a seed and differs between seeds', () => {
    const first = seededRandom(42);
    const second = seededRandom(42);
    const other = seededRandom(43);
    const a = [first(), first(), first()];
    expect([second(), second(), second()]).toEqual(a);
    expect([other(), other(), other()]).not.toEqual(a);
    for (const value of a) expect(value >= 0 && value < 1).toBe(true);
  });
});
