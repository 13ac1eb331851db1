import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createWalGenerator } from './generator.js';

/**
 * The proof that the generator writes real WAL: PostgreSQL's own pg_waldump (Debian postgresql-15)
 * must read a generated segment without error and see every record we laid out. CI has the tools;
 * with WAL_REQUIRE_CLIENT_TOOLS=1 their absence fails the suite instead of skipping it.
 */
const clientBin = process.env.WAL_PG_CLIENT_BIN ?? '/usr/lib/postgresql/15/bin';
const pgWaldump = join(clientBin, 'pg_waldump');
const available = existsSync(pgWaldump);
const required = process.env.WAL_REQUIRE_CLIENT_TOOLS === '1';
const run = promisify(execFile);

function segmentFileName(timeline: number, segment: bigint, segmentSize: number): string {
  const perId = 0x100000000n / BigInt(segmentSize);
  const hex = (value: bigint | number) => value.toString(16).toUpperCase().padStart(8, '0');
  return hex(timeline) + hex(segment / perId) + hex(segment % perId);
}

describe('pg_waldump reads generated WAL', () => {
  if (!available) {
    if (required) {
      it(`needs ${pgWaldump} (WAL_REQUIRE_CLIENT_TOOLS=1)`, () => {
        throw new Error(
          `WAL_REQUIRE_CLIENT_TOOLS=1 but ${pgWaldump} does not exist; install postgresql-15 or set WAL_PG_CLIENT_BIN.`,
        );
      });
    } else {
      it.skip(`skipped: ${pgWaldump} not found (set WAL_PG_CLIENT_BIN, or WAL_REQUIRE_CLIENT_TOOLS=1 to fail)`, () => {});
    }
    return;
  }

  const directories: string[] = [];
  afterAll(async () => {
    await Promise.all(directories.map((directory) => rm(directory, { recursive: true, force: true })));
  });

  for (const [segmentSize, segment, timeline] of [
    [16 * 1024 * 1024, 3n, 1],
    [1024 * 1024, 0x2an, 3],
  ] as const) {
    it(`accepts a full ${segmentSize / 1024 / 1024} MB PG15 segment and lists every record in it`, async () => {
      const generator = createWalGenerator({
        seed: 2024,
        segmentSize,
        timeline,
        systemId: 7710807530998405100n,
        serverVersion: 15,
        originLsn: BigInt(segmentSize),
      });
      const directory = await mkdtemp(join(tmpdir(), 'wal-format-waldump-'));
      directories.push(directory);
      const name = segmentFileName(timeline, segment, segmentSize);
      await writeFile(join(directory, name), generator.segmentBytes(segment));
      const start = segment * BigInt(segmentSize);
      const end = start + BigInt(segmentSize);
      // pg_waldump stops at the end of the one file given; the record running into the next
      // segment is not shown, nor is the tail at the start that belongs to a previous record.
      const expected = generator
        .recordsBetween(start, end)
        .filter((record) => record.lsn + BigInt(record.totalLength) <= end);
      const { stdout, stderr } = await run(pgWaldump, ['-p', directory, name], {
        maxBuffer: 256 * 1024 * 1024,
      });
      const lines = stdout.split('\n').filter((line) => line.startsWith('rmgr:'));
      expect(stderr).toBe('');
      expect(lines.length).toBe(expected.length);
      expect(lines.every((line) => /^rmgr: XLOG .* desc: NOOP/.test(line))).toBe(true);
      const lsnOf = (line: string) => /lsn: ([0-9A-F]+\/[0-9A-F]+)/.exec(line)![1];
      const format = (lsn: bigint) =>
        `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase().padStart(8, '0')}`;
      expect(lsnOf(lines[0]!)).toBe(format(expected[0]!.lsn));
      expect(lsnOf(lines.at(-1)!)).toBe(format(expected.at(-1)!.lsn));
    });
  }

  it('accepts the first segment of a new timeline, whose switch page keeps the old xlp_tli', async () => {
    const segmentSize = 1024 * 1024;
    const options = { seed: 7, segmentSize, systemId: 1n, serverVersion: 15, originLsn: 0xb00000n };
    const parent = createWalGenerator({ ...options, timeline: 1 });
    const switchLsn = parent.recordStartAtOrAfter(0xb00130n + 0x20000n);
    const child = createWalGenerator({ ...options, timeline: 2, parent: { generator: parent, switchLsn } });
    const directory = await mkdtemp(join(tmpdir(), 'wal-format-waldump-'));
    directories.push(directory);
    const name = segmentFileName(2, 0xbn, segmentSize);
    await writeFile(join(directory, name), child.segmentBytes(0xbn));
    const expected = child
      .recordsBetween(0xb00000n, 0xc00000n)
      .filter((record) => record.lsn + BigInt(record.totalLength) <= 0xc00000n);
    const { stdout } = await run(pgWaldump, ['-p', directory, name], { maxBuffer: 64 * 1024 * 1024 });
    expect(stdout.split('\n').filter((line) => line.startsWith('rmgr:')).length).toBe(expected.length);
  });
});
