import { closeSync, opendirSync, openSync, writeSync } from 'node:fs';
import {
  type Connection,
  type ConnectOptions,
  connect as libpqConnect,
  parseConnectionString as libpqParseConnectionString,
} from '@wal/libpq-lite';
import { formatLsn, WalError } from '@wal/protocol';
import { DirectorySink } from '@wal/sink-fs';
import {
  classifyError,
  type ReceiveEvent,
  type ReceiveWalOptions,
  StreamError,
  receiveWal as streamReceiveWal,
  type WalSink,
} from '@wal/stream';
import type { CompressionSpecification } from './compression-spec.js';
import { replicationConnectionParameters } from './connection-parameters.js';
import { CommandLineError } from './errors.js';
import type { Logger } from './log.js';
import { ProgressMeter } from './progress.js';
import type { ReceiveOptions } from './receive-options.js';
import { reportError } from './report-error.js';

/**
 * The body of `wal receive`, after the command line was accepted: pg_receivewal's main() from the
 * directory check on (pg_receivewal.c:816-925, spec §1.4-1.7). Returns the exit code. Every
 * collaborator can be replaced, so tests run it against fakes without a process or a server.
 */

export interface SinkOptions {
  readonly directory: string;
  readonly compression: CompressionSpecification;
  readonly sync: boolean;
}

export interface ReceiveEnvironment {
  readonly logger: Logger;
  readonly env?: Record<string, string | undefined>;
  readonly connect?: (parameters: Record<string, string>, options: ConnectOptions) => Promise<Connection>;
  readonly parseConnectionString?: (text: string) => Record<string, string>;
  readonly receiveWal?: (options: ReceiveWalOptions) => AsyncIterable<ReceiveEvent>;
  readonly createSink?: (options: SinkOptions) => WalSink;
  readonly promptPassword?: () => Promise<string>;
  /** Calls `handler` on SIGINT/SIGTERM until the returned function is called. */
  readonly onStopSignal?: (handler: (signal: NodeJS.Signals) => void) => () => void;
  /** Milliseconds, for the progress rate. */
  readonly now?: () => number;
}

/** Raised when a replication command (slot create/drop) fails; keeps the server's SQLSTATE, DETAIL, HINT. */
export class ReplicationCommandError extends WalError {
  readonly sqlState: string | undefined;
  readonly detail: string | undefined;
  readonly hint: string | undefined;

  constructor(command: string, cause: unknown) {
    const server = cause as {
      sqlState?: string;
      severity?: string;
      detail?: string;
      hint?: string;
      message?: string;
    };
    const severity = server.severity ?? 'ERROR';
    const reason =
      cause instanceof WalError && server.sqlState !== undefined
        ? `${severity}:  ${cause.message}`
        : String(server.message ?? cause);
    super('WAL_ERR_CLI_REPLICATION_COMMAND', `could not send replication command "${command}": ${reason}`, {
      cause,
      retryable: cause instanceof WalError ? cause.retryable : false,
    });
    this.sqlState = server.sqlState;
    this.detail = server.detail;
    this.hint = server.hint;
  }
}

const PROGRESS_REDRAW_INTERVAL_MS = 250;

/**
 * WAL handed to the sink and not written yet, at most (the stream's default is 4 MiB, for sinks
 * that write on other threads). With blocking writes a write is done when it returns; only while a
 * segment is closed (fsync, rename) and the next opened does WAL pile up, and what the kernel's
 * socket buffer holds meanwhile keeps the walsender sending anyway. Each MiB held here is a MiB of
 * resident memory: 1 MiB measured as fast as 4 on disk with fsync (bench/README.md).
 */
const MAX_BYTES_IN_FLIGHT = 1024 * 1024;

export async function runReceive(options: ReceiveOptions, environment: ReceiveEnvironment): Promise<number> {
  const run = new ReceiveRun(options, environment);
  try {
    return await run.execute();
  } catch (error) {
    reportError(environment.logger, error, { slot: options.slot });
    return 1;
  } finally {
    run.cleanUp();
  }
}

/** Double-quoted identifier with `"` doubled, as pg_receivewal sends slot names (streamutil.h). */
function quoted(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

const STRERROR: Readonly<Record<string, string>> = {
  ENOENT: 'No such file or directory',
  ENOTDIR: 'Not a directory',
  EACCES: 'Permission denied',
  ELOOP: 'Too many levels of symbolic links',
  ENAMETOOLONG: 'File name too long',
  EMFILE: 'Too many open files',
};

/** get_destination_dir: the directory must exist and be readable; it is never created. */
export function checkDirectory(directory: string): void {
  try {
    opendirSync(directory).closeSync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const reason = STRERROR[code] ?? (error as Error).message;
    throw new CommandLineError(
      'WAL_ERR_CLI_DIRECTORY',
      `could not open directory "${directory}": ${reason}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * A physical replication connection has no database. The error is the stream's own
 * (WAL_ERR_STREAM_DATABASE_SPECIFIC), so the user sees one code and one message for it whichever
 * action found it.
 */
async function refuseDatabaseSpecific(connection: Connection): Promise<void> {
  const system = await connection.identifySystem();
  if (system.databaseName === null) return;
  throw new StreamError(
    'WAL_ERR_STREAM_DATABASE_SPECIFIC',
    `replication connection is unexpectedly database specific (database "${system.databaseName}")`,
  );
}

/** SIGINT and SIGTERM stop the stream gracefully; a second one ends the process the default way. */
export function processStopSignals(handler: (signal: NodeJS.Signals) => void): () => void {
  let received = 0;
  const listener = (signal: NodeJS.Signals): void => {
    received += 1;
    if (received === 1) {
      handler(signal);
      return;
    }
    remove();
    process.kill(process.pid, signal);
  };
  const remove = (): void => {
    process.off('SIGINT', listener);
    process.off('SIGTERM', listener);
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return remove;
}

class ReceiveRun {
  private readonly options: ReceiveOptions;
  private readonly logger: Logger;
  private readonly environment: ReceiveEnvironment;
  private readonly stop = new AbortController();
  private password: string | undefined;
  private traceFile: number | undefined;
  private stopSignals: (() => void) | undefined;
  private unusedConnection: Connection | undefined;

  constructor(options: ReceiveOptions, environment: ReceiveEnvironment) {
    this.options = options;
    this.environment = environment;
    this.logger = environment.logger;
  }

  async execute(): Promise<number> {
    const { options } = this;
    if (options.action === 'stream') checkDirectory(options.directory!);

    const parse = this.environment.parseConnectionString ?? libpqParseConnectionString;
    const fromConnectionString =
      options.connectionString === undefined ? undefined : parse(options.connectionString);
    const trace = this.openTrace();

    if (options.password === 'before-connecting') this.password = await this.prompt();
    const connectOnce = async (): Promise<Connection> => {
      const parameters = replicationConnectionParameters(fromConnectionString, {
        host: options.host,
        username: options.username,
        port: options.port,
        password: this.password,
      });
      const connectOptions: ConnectOptions = {
        env: this.environment.env ?? process.env,
        ...(options.password === 'never'
          ? {}
          : {
              passwordPrompt: async () => {
                this.password = await this.prompt();
                return this.password;
              },
            }),
        ...(trace === undefined ? {} : { trace }),
        onWarning: (message: string) => this.logger.warning(message),
      };
      return (this.environment.connect ?? libpqConnect)(parameters, connectOptions);
    };

    // The first connection failing ends the program, without the retry loop (spec §10 item 1).
    const first = await connectOnce();
    this.unusedConnection = first;
    // Signals are trapped only now, so Ctrl-C at a password prompt still ends the program at once.
    this.stopSignals = (this.environment.onStopSignal ?? processStopSignals)(() => this.stop.abort());

    // receiveWal checks IDENTIFY_SYSTEM on every connection it makes; a slot action has no stream,
    // so it checks the connection itself first, as pg_receivewal's main() does.
    if (options.action === 'stream') return this.stream(connectOnce);
    await refuseDatabaseSpecific(first);
    if (options.action === 'drop-slot') return this.dropSlot(first);
    return this.createSlot(first);
  }

  cleanUp(): void {
    this.stopSignals?.();
    this.logger.clearProgress();
    this.unusedConnection?.destroy();
    this.unusedConnection = undefined;
    if (this.traceFile !== undefined) closeSync(this.traceFile);
    this.traceFile = undefined;
  }

  private async dropSlot(connection: Connection): Promise<number> {
    const slot = this.options.slot!;
    if (this.options.verbose > 0) this.logger.info(`dropping replication slot "${slot}"`);
    try {
      await connection.dropReplicationSlot(slot);
    } catch (error) {
      throw new ReplicationCommandError(`DROP_REPLICATION_SLOT ${quoted(slot)}`, error);
    }
    await this.closeUnused();
    return 0;
  }

  private async createSlot(connection: Connection): Promise<number> {
    const slot = this.options.slot!;
    if (this.options.verbose > 0) this.logger.info(`creating replication slot "${slot}"`);
    try {
      // No RESERVE_WAL, as pg_receivewal: the slot's restart_lsn stays NULL until a client streams.
      await connection.createReplicationSlot(slot, { reserveWal: false });
    } catch (error) {
      const sqlState = (error as { sqlState?: string }).sqlState;
      if (!(this.options.ifNotExists && sqlState === '42710')) {
        throw new ReplicationCommandError(`CREATE_REPLICATION_SLOT ${quoted(slot)} PHYSICAL`, error);
      }
    }
    await this.closeUnused();
    return 0;
  }

  private async stream(connectOnce: () => Promise<Connection>): Promise<number> {
    const { options, logger } = this;
    const createSink =
      this.environment.createSink ??
      ((sinkOptions: SinkOptions) =>
        new DirectorySink({
          directory: sinkOptions.directory,
          compression: sinkOptions.compression,
          sync: sinkOptions.sync,
          // A dedicated process: write as pg_receivewal does, without a thread-pool hop per message.
          blockingWrites: true,
          // pg_receivewal's scan warnings (`segment file "…" has incorrect size …, skipping`).
          onWarning: (message: string) => logger.warning(message),
        }));
    const sink = createSink({
      directory: options.directory!,
      compression: options.compression,
      sync: options.sync,
    });
    const connect = async (): Promise<Connection> => {
      // The first streaming attempt reuses the startup connection, as pg_receivewal's StreamLog does.
      const reused = this.unusedConnection;
      this.unusedConnection = undefined;
      return reused ?? connectOnce();
    };
    const meter = options.progress && logger.canShowProgress ? new ProgressMeter() : undefined;
    const now = this.environment.now ?? Date.now;
    let lastDrawMs: number | undefined;

    const receive = this.environment.receiveWal ?? streamReceiveWal;
    try {
      for await (const event of receive({
        connect,
        sink,
        ...(options.slot === undefined ? {} : { slot: options.slot }),
        ...(options.endLsn === undefined ? {} : { endLsn: options.endLsn }),
        statusIntervalMs: options.statusIntervalMs,
        synchronous: options.synchronous,
        noLoop: options.noLoop,
        maxBytesInFlight: MAX_BYTES_IN_FLIGHT,
        ...(options.receiveTimeoutMs === undefined ? {} : { receiveTimeoutMs: options.receiveTimeoutMs }),
        signal: this.stop.signal,
      })) {
        if (event.type === 'progress') {
          if (meter !== undefined) {
            const at = now();
            meter.record(event, at);
            // Redraw a few times a second at most: the stream reports progress per message.
            if (lastDrawMs === undefined || at - lastDrawMs >= PROGRESS_REDRAW_INTERVAL_MS) {
              logger.progress(meter.describe());
              lastDrawMs = at;
            }
          }
          continue;
        }
        if (event.type === 'disconnected') {
          reportError(logger, event.error, { slot: options.slot });
          if (options.noLoop) {
            logger.error('disconnected');
            return 1;
          }
          logger.info(`disconnected; waiting ${formatSeconds(event.retryInMs)} seconds to try again`, {
            event: 'disconnected',
            retryInMs: event.retryInMs,
          });
          continue;
        }
        this.logEvent(event);
      }
    } catch (error) {
      if (this.stop.signal.aborted && isAbort(error)) return 0;
      reportError(logger, error, { slot: options.slot });
      // pg_receivewal's main loop ends a --no-loop run with "disconnected" after a failure it would
      // otherwise have retried; fatal failures end with their own message only.
      if (options.noLoop && classifyError(error).retry) logger.error('disconnected');
      return 1;
    }
    return 0;
  }

  private logEvent(event: Exclude<ReceiveEvent, { type: 'progress' } | { type: 'disconnected' }>): void {
    const { logger } = this;
    const verbose = this.options.verbose;
    switch (event.type) {
      case 'connected':
        if (verbose > 1) {
          logger.info(
            `connected: server version ${event.serverVersion}, system identifier ${event.systemId}, ` +
              `timeline ${event.timeline}, WAL segment size ${event.segmentSize} bytes`,
            {
              event: event.type,
              systemId: event.systemId,
              timeline: event.timeline,
              serverVersion: event.serverVersion,
            },
          );
        }
        return;
      case 'streaming-started':
        if (verbose > 0) {
          logger.info(`starting log streaming at ${formatLsn(event.lsn)} (timeline ${event.timeline})`, {
            event: event.type,
            lsn: formatLsn(event.lsn),
            timeline: event.timeline,
          });
        }
        return;
      case 'segment-finished':
        if (verbose > 0) {
          logger.info(`finished segment at ${formatLsn(event.lsn)} (timeline ${event.timeline})`, {
            event: event.type,
            lsn: formatLsn(event.lsn),
            timeline: event.timeline,
          });
        }
        return;
      case 'timeline-switched':
        if (verbose > 0) {
          logger.info(`switched to timeline ${event.timeline} at ${formatLsn(event.lsn)}`, {
            event: event.type,
            lsn: formatLsn(event.lsn),
            timeline: event.timeline,
          });
        }
        return;
      case 'stopped':
        if (verbose > 0) {
          const message =
            event.reason === 'aborted'
              ? 'received interrupt signal, exiting'
              : `stopped log streaming at ${formatLsn(event.lsn)} (timeline ${event.timeline})`;
          logger.info(message, {
            event: event.type,
            reason: event.reason,
            lsn: formatLsn(event.lsn),
            timeline: event.timeline,
          });
        }
        return;
    }
  }

  private async prompt(): Promise<string> {
    if (this.environment.promptPassword !== undefined) return this.environment.promptPassword();
    // Loaded on use (node:readline): most runs never prompt.
    const { promptPassword } = await import('./password-prompt.js');
    return promptPassword();
  }

  private async closeUnused(): Promise<void> {
    const connection = this.unusedConnection;
    this.unusedConnection = undefined;
    await connection?.close();
  }

  /** --trace: wire trace lines to stderr, or appended to a file (synchronously, so none is lost at exit). */
  private openTrace(): ((line: string) => void) | undefined {
    const trace = this.options.trace;
    if (trace === undefined) return undefined;
    if (trace === true) return (line) => this.logger.trace(line);
    const file = openSync(trace, 'a', 0o600);
    this.traceFile = file;
    return (line) => {
      writeSync(file, `${line}\n`);
    };
  }
}

function formatSeconds(milliseconds: number): string {
  const seconds = milliseconds / 1000;
  return Number.isInteger(seconds) ? String(seconds) : seconds.toFixed(1);
}

function isAbort(error: unknown): boolean {
  return (
    (error instanceof Error && error.name === 'AbortError') ||
    (error instanceof WalError && /ABORT/.test(error.code))
  );
}
