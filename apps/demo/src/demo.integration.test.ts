import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

/** The built demo, as `pnpm demo` runs it: the test command builds it before vitest starts. */
const DEMO = fileURLToPath(new URL('../dist/main.js', import.meta.url));

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function demo(args: readonly string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [DEMO, ...args], { timeout: 110_000 }, (error, stdout, stderr) => {
      resolve({
        code: error === null ? 0 : typeof error.code === 'number' ? error.code : null,
        stdout,
        stderr,
      });
    });
  });
}

it('streams WAL from its own server, lists the files and removes everything', async () => {
  const { code, stdout, stderr } = await demo([]);
  expect(code, `${stdout}\n${stderr}`).toBe(0);
  expect(stdout).toMatch(/system identifier\s+\d+/);
  expect(stdout).toMatch(/wal receive: starting log streaming at \S+ \(timeline 1\)/);
  expect(stdout).toMatch(/wal receive: finished segment at /);
  expect(stdout).toMatch(/wal receive: stopped log streaming at /);
  expect(stdout).toMatch(/^ {2}[0-9A-F]{24} +1048576 bytes$/m);
  expect(stdout).toMatch(/^ {2}[0-9A-F]{24}\.partial +1048576 bytes$/m);
  expect(stdout).toMatch(/dropping replication slot "wal_demo"/);
  const archive = /^Files in (\S+):$/m.exec(stdout)?.[1];
  const dataDirectory = /data in (\S+)$/m.exec(stdout)?.[1];
  expect(archive).toBeDefined();
  expect(dataDirectory).toBeDefined();
  expect(existsSync(archive!)).toBe(false);
  expect(existsSync(dataDirectory!)).toBe(false);
});

it('refuses a server version it has no binaries for, before starting anything', async () => {
  const { code, stdout, stderr } = await demo(['--server-version=13']);
  expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
  expect(stderr).toMatch(/^wal demo: error: invalid server version "13": use one of 14, 15, 16, 17, 18/);
});
