// What the figures were measured on: they mean little without it.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { measurementMethod } from './measure.mjs';
import { clientTool, cliPath, repositoryRoot } from './receivers.mjs';

function quiet(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (error) {
    return `unavailable (${error.message.split('\n')[0]})`;
  }
}

/** The file system type holding `path` (longest mount point prefix in /proc/mounts). */
export function fileSystemOf(path) {
  try {
    let best = { mountPoint: '', type: 'unknown', device: '' };
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [device, mountPoint, type] = line.split(' ');
      if (mountPoint === undefined) continue;
      const prefix = mountPoint.endsWith('/') ? mountPoint : `${mountPoint}/`;
      if ((path === mountPoint || path.startsWith(prefix)) && mountPoint.length > best.mountPoint.length) {
        best = { mountPoint, type, device };
      }
    }
    return `${best.type} (${best.device} on ${best.mountPoint})`;
  } catch {
    return 'unknown';
  }
}

export function describeMachine() {
  const processors = cpus();
  return {
    date: new Date().toISOString(),
    cpu: `${processors.length} x ${processors[0]?.model ?? 'unknown'}`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: release(),
    node: process.version,
    loadAverage: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    pgReceivewal: quiet(clientTool('pg_receivewal'), ['--version']),
    walReceive: quiet(process.execPath, [cliPath(), 'receive', '--version']),
    commit: quiet('git', ['-C', repositoryRoot, 'describe', '--always', '--dirty']),
    cli: cliPath(),
    measurement: measurementMethod() === 'gnu-time' ? 'GNU time (wait4 rusage)' : '/proc polling every 5 ms',
  };
}
