// Runs one child process and measures it: wall time, CPU (user + system) and peak RSS.
//
// GNU time (`/usr/bin/time`, Debian package `time`) reports the child's rusage from wait4(), which is
// exact. Without it we poll /proc/<pid>/status (VmHWM, the kernel's own peak) and /proc/<pid>/stat
// (utime + stime) every few milliseconds; the last poll before exit can miss up to one interval of
// CPU, which the result says (`method: 'proc-poll'`).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

const GNU_TIME = '/usr/bin/time';
const POLL_INTERVAL_MS = 5;
const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux architecture Node supports

export function measurementMethod() {
  return existsSync(GNU_TIME) && process.env.WAL_BENCH_NO_GNU_TIME !== '1' ? 'gnu-time' : 'proc-poll';
}

/**
 * @param {string} command
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv; markers?: Record<string, RegExp>; onLine?: (line: string) => void; keepOutput?: boolean }} options
 *   markers: name -> pattern; the time (ms after spawn) of the first stderr/stdout line matching each is returned.
 * @returns {Promise<{ exitCode: number | null; signal: string | null; wallSeconds: number; userSeconds: number;
 *   systemSeconds: number; cpuSeconds: number; peakRssKiB: number; markerSeconds: Record<string, number>;
 *   output: string; method: string; child: import('node:child_process').ChildProcess }>}
 */
export function startMeasured(command, args, options = {}) {
  const method = measurementMethod();
  const handle = {
    done: undefined,
    child: undefined,
    /**
     * Signal the measured program. It runs in its own process group: GNU time ignores SIGINT and
     * SIGQUIT while it waits, so the signal goes to the group, where the program gets it.
     */
    kill(signal = 'SIGINT') {
      if (handle.child?.pid !== undefined && handle.child.exitCode === null)
        process.kill(-handle.child.pid, signal);
    },
  };
  handle.done = (async () => {
    let timeDir;
    let child;
    if (method === 'gnu-time') {
      timeDir = await mkdtemp(join(tmpdir(), 'wal-bench-time-'));
      child = spawn(GNU_TIME, ['-f', '%e %U %S %M', '-o', join(timeDir, 'time'), command, ...args], {
        env: options.env ?? process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
    } else {
      child = spawn(command, args, {
        env: options.env ?? process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
    }
    handle.child = child;
    const started = performance.now();
    const markerSeconds = {};
    let output = '';
    const watch = (stream) => {
      let pending = '';
      stream.setEncoding('utf8');
      stream.on('data', (text) => {
        const now = performance.now();
        if (options.keepOutput !== false && output.length < 1_000_000) output += text;
        pending += text;
        let newline = pending.indexOf('\n');
        while (newline >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          options.onLine?.(line);
          for (const [name, pattern] of Object.entries(options.markers ?? {})) {
            if (markerSeconds[name] === undefined && pattern.test(line))
              markerSeconds[name] = (now - started) / 1000;
          }
          newline = pending.indexOf('\n');
        }
      });
    };
    watch(child.stdout);
    watch(child.stderr);
    let polled = { cpuSeconds: 0, peakRssKiB: 0 };
    const poller =
      method === 'proc-poll'
        ? setInterval(() => {
            polled = pollProc(child.pid, polled);
          }, POLL_INTERVAL_MS)
        : undefined;
    const [exitCode, signal] = await new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signalName) => resolve([code, signalName]));
    });
    const wallSeconds = (performance.now() - started) / 1000;
    if (poller !== undefined) clearInterval(poller);
    if (method === 'gnu-time') {
      const text = await readFile(join(timeDir, 'time'), 'utf8');
      await rm(timeDir, { recursive: true, force: true });
      // GNU time prefixes "Command exited with non-zero status N" when the child failed.
      const last = text.trim().split('\n').at(-1) ?? '';
      const [, user, system, rss] = last.split(' ').map(Number);
      return {
        exitCode,
        signal,
        wallSeconds,
        userSeconds: user,
        systemSeconds: system,
        cpuSeconds: user + system,
        peakRssKiB: rss,
        markerSeconds,
        output,
        method,
      };
    }
    return {
      exitCode,
      signal,
      wallSeconds,
      userSeconds: Number.NaN,
      systemSeconds: Number.NaN,
      cpuSeconds: polled.cpuSeconds,
      peakRssKiB: polled.peakRssKiB,
      markerSeconds,
      output,
      method,
    };
  })();
  return handle;
}

/** Runs to completion; see startMeasured. */
export async function runMeasured(command, args, options = {}) {
  return startMeasured(command, args, options).done;
}

function pollProc(pid, previous) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const peak = /VmHWM:\s+(\d+) kB/.exec(status);
    // Fields after the command name (which may hold spaces): utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
    return {
      cpuSeconds: Math.max(previous.cpuSeconds, cpuSeconds),
      peakRssKiB: Math.max(previous.peakRssKiB, peak === null ? 0 : Number(peak[1])),
    };
  } catch {
    return previous; // the process is gone between polls
  }
}
