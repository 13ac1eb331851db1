import { spawn } from 'node:child_process';

/**
 * systemd's readiness protocol (sd_notify(3)): `READY=1`, `RELOADING=1`, `STOPPING=1` and `STATUS=`
 * as datagrams on the unix socket named by $NOTIFY_SOCKET. Node.js has no unix datagram sockets, so
 * the datagram is sent by systemd's own `systemd-notify`, which waits until the manager has read it
 * (docs/adr/0014-wal-daemon.md, "systemd"). Without $NOTIFY_SOCKET nothing is sent.
 */

export interface Notifier {
  /** Sends `assignments` (`READY=1`, `STATUS=…`) in one datagram; resolves once sent or given up. */
  notify(...assignments: string[]): Promise<void>;
}

export interface NotifierOptions {
  readonly env: Record<string, string | undefined>;
  /** Where a failure to notify is reported (once per kind of failure). */
  readonly onWarning: (message: string) => void;
  /** The helper; `systemd-notify` from PATH by default. */
  readonly command?: string;
}

export function createNotifier(options: NotifierOptions): Notifier {
  const socket = options.env.NOTIFY_SOCKET;
  if (socket === undefined || socket === '') return { notify: async () => undefined };
  const command = options.command ?? 'systemd-notify';
  const reported = new Set<string>();
  const warnOnce = (kind: string, message: string): void => {
    if (reported.has(kind)) return;
    reported.add(kind);
    options.onWarning(message);
  };
  // One at a time, in order: RELOADING=1 must reach the manager before the READY=1 that ends it.
  let previous: Promise<void> = Promise.resolve();
  return {
    notify(...assignments: string[]): Promise<void> {
      previous = previous.then(() => send(command, assignments, options.env, warnOnce));
      return previous;
    },
  };
}

function send(
  command: string,
  assignments: readonly string[],
  env: Record<string, string | undefined>,
  warnOnce: (kind: string, message: string) => void,
): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(command, [...assignments], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', (error) => {
      warnOnce(
        'spawn',
        `could not notify systemd: ${command}: ${error.message} (install systemd, or use Type=simple in the unit)`,
      );
      resolve();
    });
    child.on('close', (code) => {
      const reason = stderr.trim() === '' ? '' : `: ${stderr.trim()}`;
      if (code !== 0)
        warnOnce('exit', `could not notify systemd: ${command} exited with status ${code}${reason}`);
      resolve();
    });
  });
}
