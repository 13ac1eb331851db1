import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cleanupMain } from './cleanup.js';
import { parseCleanupCommandLine } from './cleanup-options.js';

/**
 * `wal cleanup`'s command line and its run through `cleanupMain`. What pg_archivecleanup 15 also
 * answers (short options, refusals, decisions) is compared with it in
 * src/e2e/cleanup-comparison.integration.test.ts; this covers what it has not: the long options.
 */

const KEPT = '000000010000000000000010';

describe('parseCleanupCommandLine', () => {
  it("reads -D ARCHIVE OLDEST and pg_archivecleanup's ARCHIVE OLDEST alike", () => {
    const expected = { archive: '/a', oldestKept: KEPT, extension: undefined, dryRun: false, debug: false };
    expect(parseCleanupCommandLine(['-D', '/a', KEPT])).toEqual({ kind: 'run', options: expected });
    expect(parseCleanupCommandLine(['/a', KEPT])).toEqual({ kind: 'run', options: expected });
  });

  it('reads the long options (PostgreSQL 17 names) as the short ones', () => {
    const long = parseCleanupCommandLine([
      '--directory=/a',
      '--dry-run',
      '--debug',
      '--strip-extension',
      '.gz',
      KEPT,
    ]);
    expect(long).toEqual(parseCleanupCommandLine(['-dn', '-x.gz', '-D/a', KEPT]));
    expect(long).toEqual({
      kind: 'run',
      options: { archive: '/a', oldestKept: KEPT, extension: '.gz', dryRun: true, debug: true },
    });
  });

  it('answers --help, -?, --version and -V anywhere on the line', () => {
    expect(parseCleanupCommandLine(['-D', '/a', '--help'])).toEqual({ kind: 'help' });
    expect(parseCleanupCommandLine(['-?'])).toEqual({ kind: 'help' });
    expect(parseCleanupCommandLine(['--version'])).toEqual({ kind: 'version' });
    expect(parseCleanupCommandLine(['-V'])).toEqual({ kind: 'version' });
  });

  it("refuses in getopt's and pg_archivecleanup's words", () => {
    expect(parseCleanupCommandLine(['--dry-run=yes', '/a', KEPT])).toEqual({
      kind: 'refused',
      message: "option '--dry-run' doesn't allow an argument",
      getopt: true,
    });
    expect(parseCleanupCommandLine(['-D', '/a'])).toEqual({
      kind: 'refused',
      message: 'must specify oldest kept WAL file',
      getopt: false,
    });
  });
});

describe('cleanupMain', () => {
  let archive: string;
  beforeEach(() => {
    archive = mkdtempSync(join(tmpdir(), 'wal-cleanup-cli-'));
    for (const name of ['000000010000000000000001.zst', '000000010000000000000001', KEPT, '00000002.history'])
      writeFileSync(join(archive, name), '');
  });
  afterEach(() => rmSync(archive, { recursive: true, force: true }));

  async function cleanup(...argv: string[]) {
    let stdout = '';
    let stderr = '';
    const code = await cleanupMain(argv, {
      program: 'wal cleanup',
      version: '1.2.3',
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
    });
    return { code, stdout, stderr };
  }

  it('--dry-run --debug lists on stdout and says so on stderr; then it removes', async () => {
    expect(await cleanup('--dry-run', '--debug', `--directory=${archive}`, KEPT)).toEqual({
      code: 0,
      stdout: `${archive}/000000010000000000000001\n${archive}/000000010000000000000001.zst\n`,
      stderr: [
        `wal cleanup: keeping WAL file "${archive}/${KEPT}" and later`,
        `wal cleanup: file "${archive}/000000010000000000000001" would be removed`,
        `wal cleanup: file "${archive}/000000010000000000000001.zst" would be removed`,
        '',
      ].join('\n'),
    });
    expect(readdirSync(archive)).toHaveLength(4);
    expect(await cleanup('--strip-extension=.zst', '-D', archive, KEPT)).toEqual({
      code: 0,
      stdout: '',
      stderr: '',
    });
    expect(readdirSync(archive).sort()).toEqual(['000000010000000000000010', '00000002.history']);
  });

  it('--version', async () => {
    expect(await cleanup('--version')).toEqual({ code: 0, stdout: 'wal cleanup (wal) 1.2.3\n', stderr: '' });
  });
});
