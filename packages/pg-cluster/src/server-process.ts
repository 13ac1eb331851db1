import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ClusterError } from './errors.js';
import { spawnIdentity } from './server-user.js';

const SETPRIV = '/usr/bin/setpriv';
const STARTUP_TIMEOUT_MS = 60_000;
const SHUTDOWN_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 25;

function hasSetpriv(): boolean {
  try {
    accessSync(SETPRIV, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const useSetpriv = hasSetpriv();

/**
 * The environment of server processes: no PG* variables (PGDATA, PGPORT... would change what
 * initdb and postgres do), C locale, and HOME pointing into the cluster's own directory.
 */
export function serverEnvironment(home: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C', LC_ALL: 'C', TZ: 'UTC' };
}

/** The last `lines` lines of a log file, or a note that there is none. */
export async function logTail(path: string, lines = 40): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text
      .split('\n')
      .slice(-lines - 1)
      .join('\n')
      .trimEnd();
  } catch {
    return '(no server log)';
  }
}

/** Runs a program as the server user to completion, its output appended to `logPath`. */
export async function runToCompletion(
  command: string,
  args: string[],
  options: { home: string; logPath: string; input?: string },
): Promise<{ exitCode: number | null; signal: NodeJS.Signals | null; output: string }> {
  const child = spawn(command, args, {
    env: serverEnvironment(options.home),
    cwd: options.home,
    stdio: ['pipe', 'pipe', 'pipe'],
    ...spawnIdentity(),
  });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.stdin.on('error', () => {
    // The program may exit before reading all input; its exit code says what happened.
  });
  child.stdin.end(options.input ?? '');
  const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, closeSignal) => resolve([code, closeSignal]));
  });
  const output = Buffer.concat(chunks).toString('utf8');
  const log = await open(options.logPath, 'a');
  try {
    await log.writeFile(`$ ${command} ${args.join(' ')}\n${output}\n`);
  } finally {
    await log.close();
  }
  return { exitCode, signal, output };
}

async function tryListen(port: number, host: string): Promise<number | 'in-use' | 'unavailable'> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') resolve('in-use');
      else if (error.code === 'EADDRNOTAVAIL' || error.code === 'EAFNOSUPPORT') resolve('unavailable');
      else reject(error);
    });
    server.listen(port, host, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * A port that was free a moment ago on 127.0.0.1 and, when the machine has IPv6 loopback, on ::1
 * too, so that a client connecting to "localhost" reaches this server whichever address it tries
 * first, and never another process that happens to hold the port on ::1. The server may still
 * lose a race for it; the caller retries.
 */
export async function findFreePort(): Promise<{ port: number; ipv6: boolean }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await tryListen(0, '127.0.0.1');
    if (typeof port !== 'number' || port === 0) throw new Error('could not bind a port on 127.0.0.1');
    const ipv6 = await tryListen(port, '::1');
    if (ipv6 === 'unavailable') return { port, ipv6: false };
    if (typeof ipv6 === 'number') return { port, ipv6: true };
  }
  throw new Error('found no port free on both 127.0.0.1 and ::1');
}

/** Whether a failed start was a lost race for the port (worth retrying on another one). */
export function isPortConflict(log: string): boolean {
  return /could not bind|could not create any TCP\/IP sockets|Address already in use/i.test(log);
}

export class PortConflictError extends ClusterError {}

/** A running postmaster, started directly (not through pg_ctl) so this process owns its pid. */
export class ServerProcess {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #child: ChildProcess;
  #hasExited = false;

  private constructor(child: ChildProcess) {
    if (child.pid === undefined) throw new Error('spawned process has no pid');
    this.pid = child.pid;
    this.#child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#hasExited = true;
        resolve({ code, signal });
      });
    });
  }

  get hasExited(): boolean {
    return this.#hasExited;
  }

  /**
   * Spawns `postgres -D dataDir -p port` with stdout/stderr appended to `logPath`, and waits until
   * postmaster.pid says "ready" (or "standby" for a hot standby), as `pg_ctl -w` does.
   */
  static async start(options: {
    postgres: string;
    dataDir: string;
    port: number;
    /** `-h`: overrides listen_addresses of postgresql.conf; undefined keeps the file's. */
    listenAddresses: string | undefined;
    logPath: string;
    home: string;
    description: string;
  }): Promise<ServerProcess> {
    const log = await open(options.logPath, 'a');
    let child: ChildProcess;
    try {
      const serverArgs = ['-D', options.dataDir, '-p', String(options.port)];
      if (options.listenAddresses !== undefined) serverArgs.push('-h', options.listenAddresses);
      // pdeathsig: if this process dies without running exit handlers (SIGKILL, OOM), the kernel
      // sends the postmaster SIGQUIT, which shuts it down at once instead of leaving it running.
      const [command, args] = useSetpriv
        ? [SETPRIV, ['--pdeathsig', 'QUIT', '--', options.postgres, ...serverArgs]]
        : [options.postgres, serverArgs];
      child = spawn(command, args, {
        env: serverEnvironment(options.home),
        cwd: options.home,
        stdio: ['ignore', log.fd, log.fd],
        ...spawnIdentity(),
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (error) {
      throw new ClusterError('WAL_ERR_CLUSTER_START', `Could not spawn ${options.description}.`, {
        cause: error,
      });
    } finally {
      await log.close();
    }
    const server = new ServerProcess(child);
    try {
      await server.#waitUntilReady(options);
    } catch (error) {
      await server.stop('immediate');
      throw error;
    }
    return server;
  }

  async #waitUntilReady(options: { dataDir: string; logPath: string; port: number; description: string }) {
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    const pidFile = join(options.dataDir, 'postmaster.pid');
    while (true) {
      if (this.#hasExited) {
        const tail = await logTail(options.logPath);
        const message = `${options.description} exited during startup on port ${options.port}. Server log:\n${tail}`;
        if (isPortConflict(tail))
          throw new PortConflictError('WAL_ERR_CLUSTER_START', message, { retryable: true });
        throw new ClusterError('WAL_ERR_CLUSTER_START', message);
      }
      let status: string | undefined;
      try {
        const lines = (await readFile(pidFile, 'utf8')).split('\n');
        // Line 1 is the postmaster's pid, line 8 its status (pidfile.h: LOCK_FILE_LINE_PM_STATUS).
        if (Number(lines[0]) === this.pid) status = lines[7]?.trim();
      } catch {
        // Not written yet.
      }
      if (status === 'ready' || status === 'standby') return;
      if (Date.now() > deadline) {
        throw new ClusterError(
          'WAL_ERR_CLUSTER_START',
          `${options.description} did not become ready within ${STARTUP_TIMEOUT_MS / 1000} s. Server log:\n${await logTail(options.logPath)}`,
        );
      }
      await delay(POLL_INTERVAL_MS);
    }
  }

  /**
   * Shuts down: 'fast' (SIGINT: abort sessions, checkpoint) escalating to 'immediate' (SIGQUIT)
   * and SIGKILL if the server does not go within the timeout.
   */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const signals: NodeJS.Signals[] =
      mode === 'fast' ? ['SIGINT', 'SIGQUIT', 'SIGKILL'] : ['SIGQUIT', 'SIGKILL'];
    for (const signal of signals) {
      if (this.#hasExited) return;
      try {
        this.#child.kill(signal);
      } catch {
        // Exited meanwhile.
      }
      const timeout = delay(SHUTDOWN_TIMEOUT_MS, 'timeout' as const, { ref: false });
      if ((await Promise.race([this.exited, timeout])) !== 'timeout') return;
    }
  }
}
