import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clientTool, serverUser } from '@wal/pg-cluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXTENSIONS, mixedArchive, OLDEST_KEPT } from './cleanup-fixture.js';
import { CLI_BIN, temporaryDirectory } from './harness.js';

/**
 * `wal cleanup` side by side with PostgreSQL 15's pg_archivecleanup (issue 15): the same
 * directory of mixed timelines, compressions, `.partial`, `.history`, `.backup` and unrelated
 * files; the same lists with `-n`, the same directories left without it, the same statuses and
 * messages for bad input. Deviations, each asserted below:
 * - without -x, wal cleanup also removes the compressed forms wal receive writes (`X.gz`,
 *   `X.lz4.partial` …), which pg_archivecleanup sees only through -x: its decisions are the union
 *   of pg_archivecleanup's with -x none, .gz, .lz4, .zst, .gz.partial, .lz4.partial, .zst.partial,
 *   less `X.partial.gz`-style names (not a form of our archive; -x .gz still removes them);
 * - an invalid OLDEST_KEPT_WALFILE's message names the argument and the forms it may take;
 * - an archive that is a file, not a directory, is called that (pg_archivecleanup: "does not exist").
 */

const PG_ARCHIVECLEANUP = clientTool('pg_archivecleanup');
const runnable = PG_ARCHIVECLEANUP !== undefined || process.env.WAL_REQUIRE_CLIENT_TOOLS === '1';
if (!runnable) console.warn('[e2e] pg_archivecleanup 15 not found: the cleanup comparison is skipped');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Identity {
  uid?: number;
  gid?: number;
}

function run(command: string, args: readonly string[], identity: Identity = {}): Run {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000, ...identity });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function pgArchivecleanup(args: readonly string[], identity?: Identity): Run {
  if (PG_ARCHIVECLEANUP === undefined)
    throw new Error('pg_archivecleanup 15 is missing: install postgresql-15');
  const result = run(PG_ARCHIVECLEANUP, args, identity);
  // glibc's getopt names the program by its path; its own messages by its name. Ours: `wal cleanup`.
  const rename = (text: string) =>
    text.replaceAll(`${PG_ARCHIVECLEANUP}:`, 'wal cleanup:').replaceAll('pg_archivecleanup', 'wal cleanup');
  return { ...result, stderr: rename(result.stderr) };
}

function walCleanup(args: readonly string[], identity?: Identity): Run {
  return run(process.execPath, [CLI_BIN, 'cleanup', ...args], identity);
}

const lines = (text: string) => text.split('\n').filter((line) => line !== '');
const sorted = (text: string) => lines(text).sort();

/** What pg_archivecleanup must be given with -x to see each segment form of our archive. */
const OUR_FORMS_AS_PG_SEES_THEM = [
  undefined,
  '.gz',
  '.lz4',
  '.zst',
  '.gz.partial',
  '.lz4.partial',
  '.zst.partial',
];
const NOT_OUR_FORM = /\.partial\.(gz|lz4|zst)$/;

let scratch: string;
let mixed: string;
let copies = 0;

/** A fresh copy of the mixed archive. */
function copy(): string {
  copies += 1;
  const directory = join(scratch, `copy-${copies}`);
  cpSync(mixed, directory, { recursive: true });
  return directory;
}

const withExtension = (extension: string | undefined) => (extension === undefined ? [] : ['-x', extension]);

describe.skipIf(!runnable)('wal cleanup and pg_archivecleanup 15 on the same archive', () => {
  beforeAll(() => {
    scratch = temporaryDirectory('cleanup-comparison');
    mixed = join(scratch, 'mixed');
    mixedArchive(mixed);
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it.each(OLDEST_KEPT)(
    '-n -x EXT lists the same files as pg_archivecleanup -n -x EXT, keeping %s',
    (oldest) => {
      for (const extension of EXTENSIONS) {
        const args = ['-n', '-x', extension, mixed, oldest];
        const ours = walCleanup(args);
        const theirs = pgArchivecleanup(args);
        expect({ code: ours.code, stderr: ours.stderr }, `-x ${extension}`).toEqual({ code: 0, stderr: '' });
        expect(theirs.code).toBe(0);
        expect(sorted(ours.stdout), `-x ${extension}`).toEqual(sorted(theirs.stdout));
        // pg_archivecleanup prints in directory order, we print the oldest position first.
        const positions = lines(ours.stdout).map((path) => path.slice(mixed.length + 9, mixed.length + 25));
        expect(positions).toEqual([...positions].sort());
      }
    },
  );

  it.each(OLDEST_KEPT)('-n without -x lists every form wal receive writes, keeping %s', (oldest) => {
    const ours = walCleanup(['-n', '-D', mixed, oldest]);
    expect(ours.code).toBe(0);
    const union = new Set<string>();
    for (const extension of OUR_FORMS_AS_PG_SEES_THEM) {
      const theirs = pgArchivecleanup(['-n', ...withExtension(extension), mixed, oldest]);
      expect(theirs.code).toBe(0);
      for (const path of lines(theirs.stdout)) if (!NOT_OUR_FORM.test(path)) union.add(path);
    }
    expect(sorted(ours.stdout)).toEqual([...union].sort());
    // Without -x, pg_archivecleanup's own list is part of ours.
    const plain = pgArchivecleanup(['-n', mixed, oldest]);
    expect(sorted(ours.stdout)).toEqual(expect.arrayContaining(lines(plain.stdout)));
    expect(lines(ours.stdout).some((path) => path.endsWith('.lz4.partial'))).toBe(
      oldest !== '00000001000000000000000E',
    );
  });

  it('without -n leaves the same directories (with -x), and ours less the compressed forms (without)', () => {
    const oldest = '000000020000000000000010.00000028.backup';
    for (const extension of [...EXTENSIONS, undefined]) {
      const ours = copy();
      const theirs = copy();
      expect(walCleanup([...withExtension(extension), ours, oldest])).toEqual({
        code: 0,
        stdout: '',
        stderr: '',
      });
      const pgRuns = extension === undefined ? OUR_FORMS_AS_PG_SEES_THEM : [extension];
      const removedByPgOnly: string[] = [];
      for (const pgExtension of pgRuns) {
        const listed = pgArchivecleanup(['-n', ...withExtension(pgExtension), theirs, oldest]);
        if (extension === undefined)
          removedByPgOnly.push(...lines(listed.stdout).filter((path) => NOT_OUR_FORM.test(path)));
        expect(pgArchivecleanup([...withExtension(pgExtension), theirs, oldest])).toEqual({
          code: 0,
          stdout: '',
          stderr: '',
        });
      }
      const left = readdirSync(ours).sort();
      const expected = [
        ...readdirSync(theirs),
        ...removedByPgOnly.map((path) => path.slice(theirs.length + 1)),
      ];
      expect(left, `-x ${extension}`).toEqual(expected.sort());
      expect(left.length).toBeLessThan(readdirSync(mixed).length);
      expect(left).toEqual(
        expect.arrayContaining(['00000002.history', '0000000A.history', 'archive_status']),
      );
    }
  });

  it('-d says what it keeps and removes, in the same words', () => {
    const oldest = '000000010000000000000010';
    for (const dryRun of [true, false]) {
      const ours = copy();
      const theirs = copy();
      const flags = dryRun ? ['-d', '-n', '-x', '.gz'] : ['-d', '-x', '.gz'];
      const ourRun = walCleanup([...flags, ours, oldest]);
      const theirRun = pgArchivecleanup([...flags, theirs, oldest]);
      expect(ourRun.code).toBe(0);
      expect(theirRun.code).toBe(0);
      const ourLines = lines(ourRun.stderr.replaceAll(ours, 'ARCHIVE'));
      const theirLines = lines(theirRun.stderr.replaceAll(theirs, 'ARCHIVE'));
      expect(ourLines[0]).toBe('wal cleanup: keeping WAL file "ARCHIVE/000000010000000000000010" and later');
      expect(ourLines[0]).toBe(theirLines[0]);
      expect(ourLines.slice(1).sort()).toEqual(theirLines.slice(1).sort());
      expect(ourLines.length).toBeGreaterThan(10);
    }
  });

  it('prints the paths as pg_archivecleanup joins them, also for an archive given with a trailing slash', () => {
    const oldest = '000000010000000000000010';
    const ours = walCleanup(['-n', '-x', '.zst', `${mixed}/`, oldest]);
    const theirs = pgArchivecleanup(['-n', '-x', '.zst', `${mixed}/`, oldest]);
    expect(lines(ours.stdout)[0]).toMatch(/\/\/[0-9A-F]{24}/);
    expect(sorted(ours.stdout)).toEqual(sorted(theirs.stdout));
  });
});

describe.skipIf(!runnable)('wal cleanup and pg_archivecleanup 15 on bad input', () => {
  beforeAll(() => {
    scratch = temporaryDirectory('cleanup-bad-input');
    mixed = join(scratch, 'mixed');
    mixedArchive(mixed);
  });
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  const KEPT = '000000010000000000000010';
  const HINT = 'wal cleanup: hint: Try "wal cleanup --help" for more information.\n';

  // ARCHIVE and MISSING stand for directories made once the suite runs.
  it.each([
    ['no arguments', [], []],
    ['no oldest kept file', ['ARCHIVE'], ['-D', 'ARCHIVE']],
    ['too many arguments', ['ARCHIVE', KEPT, 'extra'], ['-D', 'ARCHIVE', KEPT, 'extra']],
    ['an unknown option', ['-q', 'ARCHIVE', KEPT], ['-q', '-D', 'ARCHIVE', KEPT]],
    ['-x without its value', ['ARCHIVE', KEPT, '-x'], ['-D', 'ARCHIVE', KEPT, '-x']],
    ['a missing archive', ['MISSING', KEPT], ['-D', 'MISSING', KEPT]],
    ['a missing archive and a bad name', ['MISSING', 'bad'], ['-D', 'MISSING', 'bad']],
  ])('%s: the same status and message', (_what, pgLine, ourLine) => {
    const place = (args: string[]) =>
      args.map((arg) => (arg === 'ARCHIVE' ? mixed : arg === 'MISSING' ? join(mixed, 'nothing') : arg));
    const theirs = pgArchivecleanup(place(pgLine));
    expect(theirs.code).toBe(2);
    expect(walCleanup(place(ourLine))).toEqual({ code: 2, stdout: '', stderr: theirs.stderr });
    // pg_archivecleanup's own form of the line, without -D, answers the same.
    expect(walCleanup(place(pgLine))).toEqual({ code: 2, stdout: '', stderr: theirs.stderr });
  });

  it.each([
    'bad',
    '00000002.history',
    '000000010000000000000010.gz',
    '00000001000000000000001a',
    '000000010000000000000010.zz.backup',
    '000000010000000000000010.partial.partial',
    '../000000010000000000000010',
  ])('an invalid oldest kept file %j: status 2, the same error named and explained', (name) => {
    const theirs = pgArchivecleanup(['-n', mixed, name]);
    expect(theirs).toEqual({
      code: 2,
      stdout: '',
      stderr: `wal cleanup: error: invalid file name argument\n${HINT}`,
    });
    const ours = walCleanup(['-n', '-D', mixed, name]);
    expect(ours.code).toBe(2);
    expect(ours.stdout).toBe('');
    expect(ours.stderr).toBe(
      `wal cleanup: error: invalid file name argument "${name}": expected a WAL segment name (24 hexadecimal digits), alone, with ".partial" or as a backup history file (000000010000000000000010.00000020.backup)\n${HINT}`,
    );
  });

  it('accepts the odd oldest kept names pg_archivecleanup accepts, with the same decisions', () => {
    for (const name of [
      '000000010000000000000010.backup',
      '000000010000000000000010.-0xg.backup',
      '000000010000000000000010.partial.gz',
    ]) {
      const ours = walCleanup(['-n', '-x', '.gz', '-D', mixed, name]);
      const theirs = pgArchivecleanup(['-n', '-x', '.gz', mixed, name]);
      expect(ours.code, name).toBe(0);
      expect(theirs.code, name).toBe(0);
      expect(sorted(ours.stdout)).toEqual(sorted(theirs.stdout));
    }
  });

  it('an archive that is a file: status 2, called what it is', () => {
    const file = join(mixed, 'README');
    expect(pgArchivecleanup([file, '000000010000000000000010'])).toEqual({
      code: 2,
      stdout: '',
      stderr: `wal cleanup: error: archive location "${file}" does not exist\n`,
    });
    expect(walCleanup(['-D', file, '000000010000000000000010'])).toEqual({
      code: 2,
      stdout: '',
      stderr: `wal cleanup: error: archive location "${file}" is not a directory\n`,
    });
  });

  it('a file that cannot be removed: status 1 and the same message', () => {
    const ours = join(scratch, 'unremovable-ours');
    const theirs = join(scratch, 'unremovable-theirs');
    for (const directory of [ours, theirs]) {
      mkdirSync(join(directory, '000000010000000000000001'), { recursive: true });
      writeFileSync(join(directory, '00000002.history'), '');
    }
    const theirRun = pgArchivecleanup([theirs, '000000010000000000000010']);
    expect(theirRun.code).toBe(1);
    expect(walCleanup(['-D', ours, '000000010000000000000010'])).toEqual({
      code: 1,
      stdout: '',
      stderr: theirRun.stderr.replaceAll(theirs, ours),
    });
    expect(theirRun.stderr).toBe(
      `wal cleanup: error: could not remove file "${theirs}/000000010000000000000001": Is a directory\n`,
    );
  });

  describe('as an unprivileged user', () => {
    const user = serverUser();
    const identity: Identity = user.uid === undefined ? {} : { uid: user.uid, gid: user.gid };

    function lockedArchive(name: string, mode: number): string {
      const directory = join(scratch, name);
      mkdirSync(directory);
      writeFileSync(join(directory, '000000010000000000000001'), '');
      writeFileSync(join(directory, '000000010000000000000001.gz'), '');
      chmodSync(directory, mode);
      return directory;
    }

    beforeAll(() => chmodSync(scratch, 0o755));

    it('an archive it cannot list: status 1 and the same message', () => {
      const ours = lockedArchive('unlistable-ours', 0o311);
      const theirs = lockedArchive('unlistable-theirs', 0o311);
      const theirRun = pgArchivecleanup([theirs, '000000010000000000000010'], identity);
      expect(theirRun).toEqual({
        code: 1,
        stdout: '',
        stderr: `wal cleanup: error: could not open archive location "${theirs}": Permission denied\n`,
      });
      expect(walCleanup(['-D', ours, '000000010000000000000010'], identity)).toEqual({
        ...theirRun,
        stderr: theirRun.stderr.replaceAll(theirs, ours),
      });
    });

    it('an archive it may not change: status 1 at the first file, the same message', () => {
      const ours = lockedArchive('read-only-ours', 0o555);
      const theirs = lockedArchive('read-only-theirs', 0o555);
      const theirRun = pgArchivecleanup(['-x', '.gz', theirs, '000000010000000000000010'], identity);
      expect(theirRun.code).toBe(1);
      expect(theirRun.stderr).toMatch(
        /^wal cleanup: error: could not remove file ".*": Permission denied\n$/,
      );
      const ourRun = walCleanup(['-x', '.gz', '-D', ours, '000000010000000000000010'], identity);
      expect(ourRun.code).toBe(1);
      // Which file comes first differs (directory order against ours, oldest position then name).
      expect(ourRun.stderr).toBe(
        `wal cleanup: error: could not remove file "${ours}/000000010000000000000001": Permission denied\n`,
      );
      expect(readdirSync(ours).sort()).toEqual(['000000010000000000000001', '000000010000000000000001.gz']);
    });
  });
});

describe('wal cleanup --help and --version', () => {
  it('prints its usage and exits 0', () => {
    const help = walCleanup(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^wal cleanup removes older WAL files/);
    expect(help.stdout).toContain("archive_cleanup_command = 'wal cleanup -D /path/to/archive %r'");
    expect(walCleanup(['-?']).stdout).toBe(help.stdout);
    expect(walCleanup(['-V'])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^wal cleanup \(wal\) /),
    });
    // `wal --help` (oclif) lists the command.
    const listing = run(process.execPath, [CLI_BIN, '--help']);
    expect(listing.code).toBe(0);
    expect(listing.stdout).toMatch(/\n {2}cleanup +Remove older WAL files from an archive/);
  });
});
