import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { receiveMain } from './receive-main.js';
import { CapturedOutput } from './test-support.js';

/**
 * PostgreSQL's TAP test src/bin/pg_basebackup/t/020_pg_receivewal.pl, cases 1-10 (spec §8.2),
 * with `pg_receivewal` read as `wal receive`. None of them reaches a server: a connection attempt
 * would fail this suite, because the environment below has none to give.
 */

let directory: string;

beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'wal-cli-main-'));
});

afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

async function run(...argv: string[]) {
  const stdout = new CapturedOutput();
  const stderr = new CapturedOutput();
  const code = await receiveMain(argv, {
    program: 'wal receive',
    version: '1.2.3',
    stdout,
    stderr,
    environment: {
      connect: async () => {
        throw new Error('this test must not connect');
      },
    },
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const HINT = 'wal receive: hint: Try "wal receive --help" for more information.\n';

describe('TAP 020_pg_receivewal.pl cases 1-10', () => {
  it('1. --help: exit 0, stdout only, no line over 95 characters', async () => {
    for (const flag of ['--help', '-?']) {
      const result = await run(flag);
      expect(result.code).toBe(0);
      expect(result.stdout).not.toBe('');
      expect(result.stderr).toBe('');
      for (const line of result.stdout.split('\n')) expect(line.length).toBeLessThanOrEqual(95);
      expect(result.stdout).toContain('Connection options:');
      expect(result.stdout).toContain('Optional actions:');
    }
  });

  it('2. --version: exit 0, stdout only', async () => {
    for (const flag of ['--version', '-V']) {
      const result = await run(flag);
      expect(result).toEqual({ code: 0, stdout: 'wal receive (wal) 1.2.3\n', stderr: '' });
    }
  });

  it('3. an unknown option: the complaint and the hint, exit 1', async () => {
    expect(await run('--not-a-valid-option')).toEqual({
      code: 1,
      stdout: '',
      stderr: `wal receive: unrecognized option '--not-a-valid-option'\n${HINT}`,
    });
  });

  it('4. no arguments: no target directory', async () => {
    expect(await run()).toEqual({
      code: 1,
      stdout: '',
      stderr: `wal receive: error: no target directory specified\n${HINT}`,
    });
  });

  it.each(['123456789/0', '1/2/3'])('5-6. --endpos %s: could not parse end position', async (lsn) => {
    const result = await run('--directory', directory, '--endpos', lsn);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`wal receive: error: could not parse end position "${lsn}"\n`);
  });

  it('7. --create-slot with --drop-slot', async () => {
    const result = await run('--directory', directory, '--create-slot', '--drop-slot');
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: `wal receive: error: cannot use --create-slot together with --drop-slot\n${HINT}`,
    });
  });

  it('8. --create-slot without --slot', async () => {
    const result = await run('--directory', directory, '--create-slot');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `wal receive: error: --create-slot needs a slot to be specified using --slot\n${HINT}`,
    );
  });

  it('9. --synchronous with --no-sync', async () => {
    const result = await run('--directory', directory, '--synchronous', '--no-sync');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `wal receive: error: cannot use --synchronous together with --no-sync\n${HINT}`,
    );
  });

  it('10. --compress none:1', async () => {
    const result = await run('--directory', directory, '--compress', 'none:1');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^wal receive: error: invalid compression specification: compression algorithm "none" does not accept a compression level\n$/,
    );
  });
});

describe('receiveMain: more refusals', () => {
  it('refuses a missing directory before connecting', async () => {
    const missing = join(directory, 'nope');
    expect(await run('-D', missing)).toEqual({
      code: 1,
      stdout: '',
      stderr: `wal receive: error: could not open directory "${missing}": No such file or directory\n`,
    });
  });

  it('refuses --version anywhere but first, as pg_receivewal does', async () => {
    const result = await run('-D', directory, '--version');
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`wal receive: unrecognized option '--version'\n${HINT}`);
  });

  it('reports a refused command line as JSON with --json', async () => {
    const result = await run('--json', '-s', 'abc');
    expect(result.code).toBe(1);
    const record = JSON.parse(result.stderr);
    expect(record).toMatchObject({
      level: 'error',
      program: 'wal receive',
      message: 'invalid value "abc" for option -s/--status-interval',
      code: 'WAL_ERR_CLI_INVALID_VALUE',
    });
  });

  it('status interval range message has no hint, as pg_fatal', async () => {
    expect(await run('-D', directory, '-s', '2147484')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'wal receive: error: -s/--status-interval must be in range 0..2147483\n',
    });
  });
});
