import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runReceiveCommand } from './receive-entry.js';
import { receiveHelpText } from './receive-help.js';
import { CapturedOutput } from './test-support.js';

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new CapturedOutput();
  const stderr = new CapturedOutput();
  const code = await runReceiveCommand(argv, { stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe('runReceiveCommand (wal receive without oclif)', () => {
  it('prints the version oclif reported: the package version, program `wal receive`', async () => {
    for (const flag of ['--version', '-V']) {
      expect(await run(flag)).toEqual({
        code: 0,
        stdout: `wal receive (wal) ${manifest.version}\n`,
        stderr: '',
      });
    }
  });

  it('prints the pg_receivewal-style help for -?', async () => {
    expect(await run('-?')).toEqual({ code: 0, stdout: receiveHelpText('wal receive'), stderr: '' });
  });

  it('refuses a bad command line with exit 1 and the hint, as through oclif', async () => {
    const result = await run('--bogus');
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `wal receive: unrecognized option '--bogus'\nwal receive: hint: Try "wal receive --help" for more information.\n`,
    );
  });

  it('reports an error that escapes the command the way BaseCommand did: one error line, exit 1', async () => {
    const stderr = new CapturedOutput();
    const stdout = {
      write(): never {
        throw new Error('stdout is gone');
      },
    };
    const code = await runReceiveCommand(['--version'], { stdout, stderr });
    expect(code).toBe(1);
    expect(stderr.text).toBe('wal receive: error: stdout is gone\n');
  });
});
