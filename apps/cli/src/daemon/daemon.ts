import { Logger, type LogOutput } from '../log.js';
import { type ReceiveEnvironment, runReceive } from '../receive.js';
import { reportError } from '../report-error.js';
import { type DaemonConfig, loadDaemonConfig, type ServerConfig } from './config.js';
import { DaemonMetrics } from './daemon-metrics.js';
import { createNotifier, type Notifier } from './notify.js';
import { type RunReceive, ServerRunner } from './server-runner.js';
import { type Changes, Supervisor } from './supervisor.js';

/**
 * `wal daemon -c FILE`: many servers archived by one process (docs/adr/0014-wal-daemon.md). The
 * file is read whole and checked before anything starts; then each server runs on its own
 * (server-runner.ts); SIGHUP applies the file again (supervisor.ts); SIGTERM and SIGINT stop
 * every server gracefully and end with 0. systemd hears about each step (notify.ts).
 */

export const DAEMON_PROGRAM = 'wal daemon';

export interface DaemonIo {
  readonly stderr: LogOutput;
  readonly env: Record<string, string | undefined>;
  /** Replaces `wal receive`'s run (tests). */
  readonly runReceive?: RunReceive;
  /** More of each run's environment (tests). */
  readonly receiveEnvironment?: Omit<ReceiveEnvironment, 'logger' | 'onStopSignal'>;
  /** The process whose signals are handled; `process` by default. */
  readonly signals?: SignalSource;
}

export type SignalSource = Pick<NodeJS.Process, 'on' | 'off' | 'kill' | 'pid'>;

/** Runs the daemon until SIGTERM or SIGINT; the exit code (1: the file was refused at start). */
export async function daemonMain(configFile: string, io: DaemonIo): Promise<number> {
  let config: DaemonConfig;
  try {
    config = loadDaemonConfig(configFile);
  } catch (error) {
    reportError(new Logger({ program: DAEMON_PROGRAM, output: io.stderr }), error);
    return 1;
  }
  let metrics: DaemonMetrics | undefined;
  try {
    // Bound before any server starts: an address in use refuses the start, as a bad file does.
    if (config.metricsAddress !== undefined) metrics = await DaemonMetrics.start(config.metricsAddress);
  } catch (error) {
    reportError(new Logger({ program: DAEMON_PROGRAM, output: io.stderr }), error);
    return 1;
  }
  try {
    return await new Daemon(config, io, metrics).run();
  } finally {
    await metrics?.close();
  }
}

class Daemon {
  private readonly io: DaemonIo;
  /** The configuration the running set was made from. */
  private config: DaemonConfig;
  private readonly logger: Logger;
  private readonly notifier: Notifier;
  private readonly supervisor: Supervisor;
  private readonly metrics: DaemonMetrics | undefined;
  /** Reloads run one after the other; a stop waits for the one under way. */
  private reloads: Promise<void> = Promise.resolve();
  private reloadQueued = false;
  /** Set by the stop signal itself: a reload queued before it must not start servers after it. */
  private stopRequested = false;

  constructor(config: DaemonConfig, io: DaemonIo, metrics: DaemonMetrics | undefined) {
    this.io = io;
    this.config = config;
    this.metrics = metrics;
    this.logger = this.loggerFor(undefined);
    this.notifier = createNotifier({ env: io.env, onWarning: (message) => this.logger.warning(message) });
    this.supervisor = new Supervisor((server) => this.runnerFor(server));
  }

  async run(): Promise<number> {
    const signals = this.io.signals ?? process;
    const stopped = waitForStop(signals, {
      reload: () => this.queueReload(),
      stop: () => {
        this.stopRequested = true;
      },
    });
    if (this.metrics !== undefined) {
      this.logger.info(`serving metrics at ${this.metrics.url}`, {
        event: 'metrics-listening',
        url: this.metrics.url,
      });
    }
    // The first start is the first of the reloads: a SIGHUP meanwhile waits for it.
    this.reloads = this.supervisor.apply(this.config.servers).then(() => undefined);
    await this.reloads;
    const names = this.config.servers.map((server) => server.name);
    this.logger.info(
      `started ${names.length} server${names.length === 1 ? '' : 's'} from ${this.config.file}`,
      {
        event: 'daemon-started',
        servers: names,
      },
    );
    await this.notifier.notify('READY=1', `STATUS=${this.status()}`);
    const signal = await stopped;
    this.logger.info(`received ${signal}, stopping every server`, { event: 'daemon-stopping', signal });
    await this.notifier.notify('STOPPING=1');
    await this.reloads;
    await this.supervisor.stopAll();
    this.logger.info('every server stopped; exiting', { event: 'daemon-stopped' });
    return 0;
  }

  private loggerFor(server: string | undefined): Logger {
    const json = this.config.logFormat === 'json';
    return new Logger({
      program: DAEMON_PROGRAM,
      output: this.io.stderr,
      json,
      ...(server ? { server } : {}),
    });
  }

  private runnerFor(server: ServerConfig): ServerRunner {
    return new ServerRunner({
      config: server,
      logger: this.loggerFor(server.name),
      runReceive: this.io.runReceive ?? runReceive,
      environment: {
        env: this.io.env,
        ...(this.metrics === undefined ? {} : { observer: this.metrics.observerFor(server.name) }),
        ...this.io.receiveEnvironment,
      },
    });
  }

  private queueReload(): void {
    if (this.reloadQueued) return;
    this.reloadQueued = true;
    this.reloads = this.reloads.then(async () => {
      this.reloadQueued = false;
      if (!this.stopRequested) await this.reload();
    });
  }

  /** SIGHUP: the file again; a refused file changes nothing. */
  private async reload(): Promise<void> {
    await this.notifier.notify('RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
    this.logger.info(`reloading ${this.config.file}`, { event: 'daemon-reloading' });
    let next: DaemonConfig;
    try {
      next = loadDaemonConfig(this.config.file);
    } catch (error) {
      reportError(this.logger, error);
      this.logger.warning('the file was refused; every server runs on as before', {
        event: 'daemon-reload-refused',
      });
      await this.notifier.notify('READY=1', `STATUS=${this.status()}`);
      return;
    }
    if (next.logFormat !== this.config.logFormat || !sameAddress(next, this.config)) {
      this.logger.warning(
        'log_format and metrics_address are read at start only; restart wal daemon to change them',
      );
    }
    this.config = { ...next, logFormat: this.config.logFormat, metricsAddress: this.config.metricsAddress };
    const changes = await this.supervisor.apply(next.servers);
    for (const name of changes.removed) this.metrics?.remove(name);
    this.logger.info(`reloaded: ${describeChanges(changes)}`, { event: 'daemon-reloaded', ...changes });
    // STOPPING=1 may have been sent meanwhile; READY=1 after it would tell systemd otherwise.
    if (!this.stopRequested) await this.notifier.notify('READY=1', `STATUS=${this.status()}`);
  }

  private status(): string {
    const count = this.supervisor.servers.length;
    return `archiving ${count} server${count === 1 ? '' : 's'}`;
  }
}

function sameAddress(left: DaemonConfig, right: DaemonConfig): boolean {
  return JSON.stringify(left.metricsAddress) === JSON.stringify(right.metricsAddress);
}

function describeChanges(changes: Changes): string {
  const part = (word: string, names: readonly string[]) =>
    `${word} ${names.length === 0 ? 'none' : names.join(', ')}`;
  return [
    part('added', changes.added),
    part('removed', changes.removed),
    part('restarted', changes.changed),
    part('unchanged', changes.unchanged),
  ].join('; ');
}

/**
 * Resolves with the first SIGTERM or SIGINT, which calls `on.stop` at once; SIGHUP calls `on.reload`
 * meanwhile. A second stop signal ends the process the default way, as it does `wal receive`;
 * SIGHUP stays caught to the end.
 */
function waitForStop(
  signals: SignalSource,
  on: { reload: () => void; stop: () => void },
): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let stopping = false;
    const onHangUp = (): void => {
      if (!stopping) on.reload();
    };
    const onStop = (signal: NodeJS.Signals): void => {
      if (!stopping) {
        stopping = true;
        on.stop();
        resolve(signal);
        return;
      }
      signals.off('SIGINT', onStop);
      signals.off('SIGTERM', onStop);
      signals.kill(signals.pid, signal);
    };
    signals.on('SIGHUP', onHangUp);
    signals.on('SIGINT', onStop);
    signals.on('SIGTERM', onStop);
  });
}
