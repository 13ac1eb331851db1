import { type Connection, type ConnectOptions, connect } from '@wal/libpq-lite';
import { ReconnectBackoff } from '@wal/stream';
import type { Logger } from '../log.js';
import { isAbort, type ReceiveEnvironment, type ReceiveObserver } from '../receive.js';
import type { ReceiveOptions } from '../receive-options.js';
import type { ServerConfig } from './config.js';

/**
 * One server of `wal daemon`: `wal receive`'s run (runReceive) for its options, again and again.
 * Its stream reconnects on its own; when a run ends anyway (the first connection failed, or a
 * failure the stream does not retry) the server starts again after its own backoff, which no other
 * server waits on (docs/adr/0014-wal-daemon.md, "Independence").
 */

/** The first restart delay: pg_receivewal's reconnect interval; it doubles up to the stream's maximum. */
export const RESTART_DELAY_MS = 5000;

export type RunReceive = (options: ReceiveOptions, environment: ReceiveEnvironment) => Promise<number>;

export interface ServerRunnerOptions {
  readonly config: ServerConfig;
  /** The server's logger (its name on every line). */
  readonly logger: Logger;
  readonly runReceive: RunReceive;
  /** More of the run's environment (metrics observers, test doubles); never the logger or signals. */
  readonly environment?: Omit<ReceiveEnvironment, 'logger' | 'onStopSignal'>;
  readonly restartDelayMs?: number;
  readonly now?: () => number;
}

export type ServerState = 'running' | 'waiting' | 'stopping' | 'stopped';

export class ServerRunner {
  readonly config: ServerConfig;
  private readonly options: ServerRunnerOptions;
  private readonly logger: Logger;
  private readonly backoff: ReconnectBackoff;
  private stopRequested = false;
  /** Aborts what a run's own stop does not reach: its first connection attempt. */
  private readonly stopping = new AbortController();
  /** The running run's stop (ReceiveRun's handler), once it trapped "signals". */
  private stopRun: ((signal: NodeJS.Signals) => void) | undefined;
  /** Ends the wait between two runs early (stop, or a reload asking failed servers to try now). */
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  #state: ServerState = 'stopped';

  constructor(options: ServerRunnerOptions) {
    this.options = options;
    this.config = options.config;
    this.logger = options.logger;
    this.backoff = new ReconnectBackoff(options.restartDelayMs ?? RESTART_DELAY_MS);
  }

  get state(): ServerState {
    return this.#state;
  }

  start(): void {
    if (this.loop !== undefined) throw new Error(`server "${this.config.name}" started twice`);
    this.logger.info('starting', { event: 'server-starting' });
    this.loop = this.runUntilStopped();
  }

  /** Stops the run the way SIGTERM stops `wal receive` (final status, `.partial` kept) and waits for it. */
  async stop(): Promise<void> {
    if (!this.stopRequested) {
      this.stopRequested = true;
      this.#state = 'stopping';
      this.stopRun?.('SIGTERM');
      this.stopping.abort();
      this.wakeUp?.();
    }
    await this.loop;
  }

  /** Between two runs: start the next one now (a reload, after the operator fixed something). */
  retryNow(): void {
    this.wakeUp?.();
  }

  private async runUntilStopped(): Promise<void> {
    const now = this.options.now ?? Date.now;
    while (!this.stopRequested) {
      const startedAt = now();
      this.#state = 'running';
      const exitCode = await this.runOnce();
      if (this.stopRequested) break;
      // A run that lasted longer than the longest wait was not part of a series of failures.
      if (now() - startedAt >= this.backoff.maximumMs) this.backoff.reset();
      const delayMs = this.backoff.next();
      this.logger.warning(
        `stopped with exit status ${exitCode}; starting again in ${delayMs / 1000} seconds`,
        {
          event: 'server-restarting',
          exitCode,
          retryInMs: delayMs,
        },
      );
      this.#state = 'waiting';
      await this.wait(delayMs);
    }
    this.#state = 'stopped';
    this.logger.info('stopped', { event: 'server-stopped' });
  }

  /** One run: the slot first when `create-slot: true` (kept if it exists), then the stream. */
  private async runOnce(): Promise<number> {
    const { options, ensureSlot } = this.config;
    if (ensureSlot) {
      const created = await this.run({ ...options, action: 'create-slot', ifNotExists: true });
      if (created !== 0 || this.stopRequested) return created;
    }
    return this.run(options);
  }

  private run(options: ReceiveOptions): Promise<number> {
    const observer = this.options.environment?.observer;
    return this.options.runReceive(options, {
      ...this.options.environment,
      ...(observer === undefined ? {} : { observer: this.stopAware(observer) }),
      connect: this.connectUntilStopped(),
      logger: this.logger,
      onStopSignal: (handler) => this.trapStop(handler),
    });
  }

  /**
   * A connection attempt this runner's stop aborted is the stop, not a failure (ReceiveObserver):
   * a changed server would otherwise be unhealthy, with one more error, until its next run streams.
   */
  private stopAware(observer: ReceiveObserver): ReceiveObserver {
    return {
      ...observer,
      failed: (error) => {
        if (this.stopping.signal.aborted && isAbort(error)) return;
        observer.failed(error);
      },
    };
  }

  /**
   * `wal receive` makes its first connection without its stop signal (Ctrl-C at a password prompt
   * ends the program there); a daemon's stop or reload must not wait for a host that does not
   * answer, so every attempt also ends with this runner's stop.
   */
  private connectUntilStopped(): (
    parameters: Record<string, string>,
    options: ConnectOptions,
  ) => Promise<Connection> {
    const connectOnce = this.options.environment?.connect ?? connect;
    return (parameters, options) => {
      const signals =
        options.signal === undefined ? [this.stopping.signal] : [options.signal, this.stopping.signal];
      return connectOnce(parameters, { ...options, signal: AbortSignal.any(signals) });
    };
  }

  /**
   * The run's stop signal is this runner's stop. A run traps it only once its first connection
   * is made; a stop asked for before then reaches it as soon as it does.
   */
  private trapStop(handler: (signal: NodeJS.Signals) => void): () => void {
    this.stopRun = handler;
    if (this.stopRequested) queueMicrotask(() => handler('SIGTERM'));
    return () => {
      if (this.stopRun === handler) this.stopRun = undefined;
    };
  }

  private wait(delayMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, delayMs);
      this.wakeUp = done;
    });
  }
}
