import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testedVersions } from './index.js';

const register = fileURLToPath(new URL('./__fixtures__/register-typescript.mjs', import.meta.url));
const script = fileURLToPath(new URL('./__fixtures__/crashing-process.ts', import.meta.url));
const version = testedVersions()[0] ?? 18;

/** Running and not a zombie (a container's PID 1 may never reap an orphaned postmaster). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function waitUntilGone(pid: number): Promise<void> {
  // The postmaster exits asynchronously after SIGQUIT; the test timeout bounds this loop.
  while (isRunning(pid)) await delay(20);
}

async function crash(
  mode: 'throw' | 'SIGTERM' | 'SIGKILL',
): Promise<{ baseDir: string; serverPid: number; exit: Promise<unknown> }> {
  const child = spawn(
    process.execPath,
    ['--import', register, script, String(version), mode === 'throw' ? 'throw' : 'wait'],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  let output = '';
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const end = output.indexOf('\n');
      if (end >= 0) resolve(output.slice(0, end));
    });
    child.once('exit', () => reject(new Error(`child exited before starting a cluster:\n${errors}`)));
  });
  try {
    const { baseDir, dataDir } = JSON.parse(line) as { baseDir: string; dataDir: string };
    const serverPid = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
    expect(isRunning(serverPid)).toBe(true);
    if (mode === 'throw') child.stdin.write('crash now\n');
    else child.kill(mode);
    return { baseDir, serverPid, exit };
  } catch (error) {
    // Do not leave the child (and its server) behind when the test fails here.
    child.kill('SIGTERM');
    throw error;
  }
}

describe('a test process that dies', () => {
  it('stops its server and removes its directory on an uncaught exception', async () => {
    const { baseDir, serverPid, exit } = await crash('throw');
    expect(await exit).toBe(1);
    expect(existsSync(baseDir)).toBe(false);
    await waitUntilGone(serverPid);
  });

  it('stops its server and removes its directory on SIGTERM', async () => {
    const { baseDir, serverPid, exit } = await crash('SIGTERM');
    expect(await exit).toBe('SIGTERM');
    expect(existsSync(baseDir)).toBe(false);
    await waitUntilGone(serverPid);
  });

  it.runIf(existsSync('/usr/bin/setpriv'))('stops its server even when killed with SIGKILL', async () => {
    const { baseDir, serverPid, exit } = await crash('SIGKILL');
    expect(await exit).toBe('SIGKILL');
    await waitUntilGone(serverPid);
    // No handler runs on SIGKILL: the directory stays, so the test removes it.
    await rm(baseDir, { recursive: true, force: true });
  });
});
