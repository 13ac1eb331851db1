import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { CLI_BIN, RunningProcess } from './e2e/harness.js';

it('wal demo streams WAL from its own server, lists the files and removes everything', async () => {
  const { code, stdout, stderr } = await new RunningProcess(
    process.execPath,
    [CLI_BIN, 'demo'],
    process.env,
    'wal demo',
  ).result;
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
