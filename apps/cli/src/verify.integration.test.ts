import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { walFileName } from '@wal/protocol';
import { createWalGenerator } from '@wal/protocol/wal-format';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI_BIN, temporaryDirectory } from './e2e/harness.js';

/**
 * `wal verify` as an operator runs it from cron or monitoring: the built binary, its text and JSON
 * reports, and its exit statuses (0 sound, 2 problems found, 1 could not verify). What counts as
 * a problem is tested in @wal/verify; here, that the command reports it and exits right.
 */

const MB = 1024 * 1024;
let scratch: string;
let archive: string;

beforeEach(() => {
  scratch = temporaryDirectory('wal-verify-cli-');
  archive = join(scratch, 'archive');
  mkdirSync(archive);
  const wal = createWalGenerator({ seed: 3, segmentSize: MB, timeline: 1, systemId: 42n, serverVersion: 17 });
  for (const segment of [1n, 2n, 3n])
    writeFileSync(join(archive, walFileName(1, segment, MB)), wal.segmentBytes(segment));
});
afterEach(() => rmSync(scratch, { recursive: true, force: true }));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function verify(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI_BIN, 'verify', ...args], (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? null), stdout, stderr });
    });
  });
}

describe('wal verify', () => {
  it('exits 0 and says so for a sound archive', async () => {
    const result = await verify('-D', archive);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain(
      'wal verify: checked 3 files (3145728 bytes), files 000000010000000000000001 to 000000010000000000000003',
    );
    expect(result.stdout).toContain('wal verify: the archive is sound');
  });

  it('exits 2 and lists each problem with file and LSN, in text and JSON', async () => {
    rmSync(join(archive, '000000010000000000000002'));
    const broken = Buffer.from(
      createWalGenerator({
        seed: 3,
        segmentSize: MB,
        timeline: 1,
        systemId: 42n,
        serverVersion: 17,
      }).segmentBytes(3n),
    );
    broken.writeUInt8(broken.readUInt8(3 * 8192 + 9) ^ 0x01, 3 * 8192 + 9);
    writeFileSync(join(archive, '000000010000000000000003'), broken);
    const text = await verify('-D', archive);
    expect(text.code).toBe(2);
    expect(text.stdout).toContain(
      'wal verify: missing: 000000010000000000000002 to 000000010000000000000002 (WAL 0/200000 to 0/300000)',
    );
    expect(text.stdout).toContain(
      'wal verify: page-header: 000000010000000000000003 at 0/306000: unexpected page address',
    );
    expect(text.stdout).toContain('wal verify: 2 problems found');
    const json = await verify('-D', archive, '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({
      sound: false,
      filesChecked: 2,
      missing: [{ firstFile: '000000010000000000000002', startLsn: '0/200000', endLsn: '0/300000' }],
      problems: [{ kind: 'page-header', file: '000000010000000000000003', lsn: '0/306000' }],
    });
  });

  it('checks only the range asked for, and reports an archive that begins later', async () => {
    rmSync(join(archive, '000000010000000000000001'));
    expect((await verify('-D', archive, '--from', '000000010000000000000002', '--to', '0/3FFFFF')).code).toBe(
      0,
    );
    const early = await verify('-D', archive, '--from', '0/180000', '--json');
    expect(early.code).toBe(2);
    expect(JSON.parse(early.stdout).missing).toEqual([
      {
        firstFile: '000000010000000000000001',
        lastFile: '000000010000000000000001',
        startLsn: '0/100000',
        endLsn: '0/200000',
      },
    ]);
  });

  it('exits 1 when it cannot verify: bad arguments, a missing or empty archive', async () => {
    for (const args of [
      [],
      ['-D', archive, '--timeline', 'x'],
      ['-D', archive, '--from', 'nowhere'],
      ['-D', join(scratch, 'none')],
      ['-D', scratch],
    ]) {
      const result = await verify(...args);
      expect(result.code, args.join(' ')).toBe(1);
      expect(result.stderr).toMatch(/^wal verify: error: /);
      expect(result.stdout).toBe('');
    }
  });
});
