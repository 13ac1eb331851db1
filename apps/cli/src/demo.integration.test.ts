import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url));

it('wal demo streams WAL from its own server, lists the files and removes everything', async () => {
  const child = spawn(process.execPath, [BIN, 'demo'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
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
