import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { formatLsn, walFileName } from '@wal/protocol';
import { createWalGenerator, type WalGenerator } from '@wal/protocol/wal-format';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyArchive } from './verify-archive.js';

/**
 * Archives of generated WAL (valid to pg_waldump, see @wal/protocol's pg-waldump test) with one
 * hand-made fault each: the report must name exactly that fault.
 */
const MB = 1024 * 1024;
const SYSTEM_ID = 7310000000000000001n;
let archive: string;

beforeEach(async () => {
  archive = await mkdtemp(join(tmpdir(), 'wal-verify-'));
});
afterEach(async () => {
  await rm(archive, { recursive: true, force: true });
});

function generator(options: { timeline?: number; systemId?: bigint; seed?: number } = {}): WalGenerator {
  return createWalGenerator({
    seed: options.seed ?? 7,
    segmentSize: MB,
    timeline: options.timeline ?? 1,
    systemId: options.systemId ?? SYSTEM_ID,
    serverVersion: 16,
  });
}

async function store(timeline: number, segment: bigint, bytes: Buffer, suffix = ''): Promise<string> {
  const name = `${walFileName(timeline, segment, MB)}${suffix}`;
  await writeFile(join(archive, name), bytes);
  return name;
}

/** A copy of a segment with the bit `mask` of the byte at `offset` flipped. */
function flipped(bytes: Buffer, offset: number, mask = 0x10): Buffer {
  const copy = Buffer.from(bytes);
  copy[offset]! ^= mask;
  return copy;
}

/** A record that lies inside one page, away from its header, in segment `segment`. */
function recordInsidePage(wal: WalGenerator, segment: bigint): { lsn: bigint; totalLength: number } {
  const start = segment * BigInt(MB);
  return wal
    .recordsBetween(start + 50_000n, start + BigInt(MB))
    .find(
      (record) => Number(record.lsn % 8192n) > 64 && Number(record.lsn % 8192n) + record.totalLength < 8192,
    )!;
}

async function storeSegments(wal: WalGenerator, segments: bigint[]): Promise<void> {
  for (const segment of segments) await store(wal.timeline, segment, wal.segmentBytes(segment));
}

describe('verifyArchive on one timeline', () => {
  it('passes a sound archive, plain and gzip, with a final partial', async () => {
    const wal = generator();
    await store(1, 1n, wal.segmentBytes(1n));
    await store(1, 2n, gzipSync(wal.segmentBytes(2n)), '.gz');
    const end = wal.recordStartAtOrAfter(3n * BigInt(MB) + 300_000n);
    await store(1, 3n, wal.segmentFile(3n, { endLsn: end }), '.partial');
    const report = await verifyArchive({ archive });
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({
      sound: true,
      segmentSize: MB,
      timeline: 1,
      filesChecked: 3,
      bytesChecked: 3 * MB,
      systemId: SYSTEM_ID.toString(),
      missing: [],
    });
  });

  it('finds a flipped bit inside a record: its CRC, at its LSN', async () => {
    const wal = generator();
    const record = recordInsidePage(wal, 2n);
    const offset = Number(record.lsn - 2n * BigInt(MB)) + 30;
    await store(1, 1n, wal.segmentBytes(1n));
    const name = await store(1, 2n, flipped(wal.segmentBytes(2n), offset));
    await store(1, 3n, wal.segmentBytes(3n));
    const report = await verifyArchive({ archive });
    expect(report.sound).toBe(false);
    expect(report.problems).toEqual([
      {
        kind: 'record-crc',
        file: name,
        lsn: formatLsn(record.lsn),
        message: expect.stringContaining('CRC-32C'),
      },
    ]);
  });

  it('finds a flipped bit in a page header: the page address', async () => {
    const wal = generator();
    const page = 2n * BigInt(MB) + 5n * 8192n;
    await storeSegments(wal, [1n, 3n]);
    const name = await store(1, 2n, flipped(wal.segmentBytes(2n), 5 * 8192 + 12, 0x01));
    const report = await verifyArchive({ archive });
    expect(report.problems).toEqual([
      {
        kind: 'page-header',
        file: name,
        lsn: formatLsn(page),
        message: expect.stringContaining('unexpected page address'),
      },
    ]);
  });

  it('finds a flipped bit in a long header: the segment size', async () => {
    const wal = generator();
    await storeSegments(wal, [1n, 3n]);
    const name = await store(1, 2n, flipped(wal.segmentBytes(2n), 34, 0x01));
    const report = await verifyArchive({ archive });
    expect(report.problems).toEqual([
      {
        kind: 'long-header',
        file: name,
        lsn: formatLsn(2n * BigInt(MB)),
        message: expect.stringContaining('segment size'),
      },
    ]);
  });

  it('finds a continuation length that does not match', async () => {
    const wal = generator();
    await storeSegments(wal, [1n, 3n]);
    const bytes = Buffer.from(wal.segmentBytes(2n));
    let page = 1;
    while ((bytes.readUInt16LE(page * 8192 + 2) & 1) === 0) page++;
    bytes.writeUInt32LE(bytes.readUInt32LE(page * 8192 + 16) + 8, page * 8192 + 16);
    const name = await store(1, 2n, bytes);
    const report = await verifyArchive({ archive });
    expect(report.problems).toEqual([
      {
        kind: 'continuation',
        file: name,
        lsn: formatLsn(2n * BigInt(MB) + BigInt(page * 8192)),
        message: expect.stringContaining('continuation length'),
      },
    ]);
  });

  it('finds a truncated segment where its data stops', async () => {
    const wal = generator();
    await storeSegments(wal, [1n, 3n]);
    const name = await store(1, 2n, wal.segmentBytes(2n).subarray(0, 300_000));
    const report = await verifyArchive({ archive });
    expect(report.problems).toEqual([
      {
        kind: 'truncated-segment',
        file: name,
        lsn: formatLsn(2n * BigInt(MB) + 300_000n),
        message: expect.any(String),
      },
    ]);
  });

  it('finds zeros inside a completed segment', async () => {
    const wal = generator();
    await storeSegments(wal, [1n, 3n]);
    const bytes = Buffer.from(wal.segmentBytes(2n));
    bytes.fill(0, 20 * 8192, 21 * 8192);
    const name = await store(1, 2n, bytes);
    const report = await verifyArchive({ archive });
    expect(report.problems).toEqual([
      {
        kind: 'truncated-segment',
        file: name,
        lsn: formatLsn(2n * BigInt(MB) + 20n * 8192n),
        message: expect.any(String),
      },
    ]);
  });

  it('reports missing segments as one range with file names and LSNs', async () => {
    const wal = generator();
    await storeSegments(wal, [1n, 4n]);
    const report = await verifyArchive({ archive });
    expect(report.problems).toEqual([]);
    expect(report.missing).toEqual([
      {
        firstFile: '000000010000000000000002',
        lastFile: '000000010000000000000003',
        startLsn: '0/200000',
        endLsn: '0/400000',
      },
    ]);
    expect(report.sound).toBe(false);
  });

  it('reports an archive that does not begin where it was asked to', async () => {
    const wal = generator();
    await storeSegments(wal, [2n, 3n]);
    const report = await verifyArchive({ archive, from: '0/100028' });
    expect(report.missing).toEqual([expect.objectContaining({ firstFile: '000000010000000000000001' })]);
    const ranged = await verifyArchive({ archive, from: '000000010000000000000003', to: '0/3FFFFF' });
    expect(ranged).toMatchObject({ sound: true, filesChecked: 1 });
  });

  it('finds a segment of another database system stored under a right name', async () => {
    const wal = generator();
    const other = generator({ systemId: 6000000000000000042n, seed: 99 });
    await storeSegments(wal, [1n, 3n]);
    const name = await store(1, 2n, other.segmentBytes(2n));
    const report = await verifyArchive({ archive });
    expect(report.problems).toEqual([
      {
        kind: 'foreign-system',
        file: name,
        lsn: '0/200000',
        message: expect.stringContaining('6000000000000000042'),
      },
    ]);
  });

  it('finds a stale partial behind a complete segment', async () => {
    const wal = generator();
    await storeSegments(wal, [1n, 2n, 3n]);
    await store(1, 2n, wal.segmentFile(2n, { endLsn: 2n * BigInt(MB) + 5000n }), '.partial');
    const report = await verifyArchive({ archive });
    expect(report.problems).toEqual([
      { kind: 'stale-partial', file: '000000010000000000000002.partial', message: expect.any(String) },
    ]);
  });
});

describe('verifyArchive across a promotion', () => {
  async function promoted(): Promise<{ switchLsn: bigint; child: WalGenerator }> {
    const parent = generator();
    const switchLsn = parent.recordStartAtOrAfter(3n * BigInt(MB) + 400_000n);
    const child = createWalGenerator({
      seed: 8,
      segmentSize: MB,
      timeline: 2,
      systemId: SYSTEM_ID,
      serverVersion: 16,
      parent: { generator: parent, switchLsn },
    });
    await storeSegments(parent, [1n, 2n]);
    await store(1, 3n, parent.segmentFile(3n, { endLsn: switchLsn }), '.partial');
    await storeSegments(child, [3n, 4n]);
    await writeFile(
      join(archive, '00000002.history'),
      `1\t${formatLsn(switchLsn)}\tno recovery target specified\n`,
    );
    return { switchLsn, child };
  }

  it('passes an archive whose timeline switched inside a segment', async () => {
    await promoted();
    const report = await verifyArchive({ archive });
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({
      sound: true,
      timeline: 2,
      filesChecked: 4,
      lastFile: '000000020000000000000004',
    });
  });

  it('finds a history file that disagrees with the WAL', async () => {
    const { switchLsn } = await promoted();
    const wrong = switchLsn + 3n * 8192n;
    await writeFile(
      join(archive, '00000002.history'),
      `1\t${formatLsn(wrong)}\tno recovery target specified\n`,
    );
    const report = await verifyArchive({ archive });
    expect(report.problems).toEqual([
      {
        kind: 'history',
        file: '00000002.history',
        lsn: formatLsn(switchLsn - (switchLsn % 8192n) + 8192n),
        message: expect.stringContaining('timeline 2'),
      },
    ]);
  });

  it('finds a switch point after the end of the archive', async () => {
    const { switchLsn } = await promoted();
    await writeFile(
      join(archive, '00000003.history'),
      `1\t${formatLsn(switchLsn)}\tfirst\n2\t0/9000000\tlater\n`,
    );
    const report = await verifyArchive({ archive, timeline: 3 });
    expect(report.problems).toContainEqual({
      kind: 'history',
      file: '00000003.history',
      lsn: '0/9000000',
      message: expect.stringContaining('after the end'),
    });
  });

  it('finds that recovery would fall back to the parent for the switch segment', async () => {
    await promoted();
    await rm(join(archive, '000000020000000000000003'));
    await store(1, 3n, generator().segmentBytes(3n));
    const report = await verifyArchive({ archive });
    expect(report.problems).toContainEqual(
      expect.objectContaining({ kind: 'timeline-fallback', file: '000000010000000000000003' }),
    );
  });

  it('finds orphan timelines, unparsable and contradicting histories', async () => {
    await promoted();
    await writeFile(join(archive, '00000003.history'), '1\t0/180000\tbranch\n');
    await store(3, 5n, Buffer.alloc(0));
    await writeFile(join(archive, '00000004.history'), 'one\t0/1\n');
    const report = await verifyArchive({ archive, timeline: 2 });
    expect(report.problems).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'orphan-timeline', file: '00000003.history' }),
        expect.objectContaining({ kind: 'orphan-timeline', file: '00000004.history' }),
        expect.objectContaining({ kind: 'history', file: '00000004.history' }),
      ]),
    );
    const three = await verifyArchive({ archive, timeline: 3 });
    expect(three.problems).toContainEqual(
      expect.objectContaining({ kind: 'orphan-timeline', file: '00000002.history' }),
    );
  });
});
