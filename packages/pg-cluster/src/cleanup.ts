import { rmSync } from 'node:fs';

/**
 * Every server this process started and every temporary directory it made, so that nothing is
 * left behind when a test run ends abruptly: on 'exit' (also after an uncaught exception) and on
 * SIGINT/SIGTERM/SIGHUP the servers get SIGQUIT (immediate shutdown) and the directories go.
 * A SIGKILL cannot be caught; for that the server is started under `setpriv --pdeathsig`.
 */
interface Leftover {
  pid: number | undefined;
  directory: string;
}

const leftovers = new Set<Leftover>();
let installed = false;

function cleanUpNow(): void {
  for (const leftover of leftovers) {
    if (leftover.pid !== undefined) {
      try {
        process.kill(leftover.pid, 'SIGQUIT');
      } catch {
        // Already gone.
      }
    }
  }
  for (const leftover of leftovers) {
    try {
      rmSync(leftover.directory, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
    } catch {
      // Best effort while exiting: nothing useful can be done with the error.
    }
  }
  leftovers.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  process.removeListener(signal, onSignal);
  cleanUpNow();
  // Keep the default meaning of the signal (terminate) unless someone else handles it.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', cleanUpNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);
}

/** Registers a temporary directory (and later its server's pid) for cleanup at exit. */
export function trackLeftover(directory: string): Leftover {
  install();
  const leftover: Leftover = { pid: undefined, directory };
  leftovers.add(leftover);
  return leftover;
}

export function forgetLeftover(leftover: Leftover): void {
  leftovers.delete(leftover);
}

export type { Leftover };
