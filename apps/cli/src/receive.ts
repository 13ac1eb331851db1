import { closeSync, opendirSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { Connection, ConnectOptions } from '@wal/libpq-lite';
import { escapeControlCharacters, formatLsn, systemErrorText, WalError } from '@wal/protocol';
import type { DirectorySinkOptions } from '@wal/sink-fs';
import type { S3Sink, UploadStatus, UploadStore } from '@wal/sink-s3';
import type { ReceiveEvent, ReceiveWalOptions, WalSink } from '@wal/stream';
import { type CompressionSpecification, PG_RECEIVEWAL_15_COMPRESSION } from './compression-spec.js';
import { replicationConnectionParameters } from './connection-parameters.js';
import { CommandLineError } from './errors.js';
import { Logger } from './log.js';
import { ProgressMeter } from './progress.js';
import { receiveHelpText, receiveVersionText } from './receive-help.js';
import {
  isObjectStoreLocation,
  parseReceiveCommandLine,
  type ReceiveOptions,
  wantsJson,
} from './receive-options.js';
import { reportError } from './report-error.js';

/**
 * `wal receive`, pg_receivewal's drop-in, from the process's argv to its exit code. Read top to
 * bottom, this is the path a run takes:
 *
 * 1. `receiveFastPathArguments`: bin/run.js hands `wal receive …` to `main` here and everything
 *    else to oclif, which this path never loads (docs/adr/0005-own-getopt.md, "Start-up without
 *    oclif").
 * 2. `main` and `runReceiveCommand`: what oclif did around a command (program name, version,
 *    errors that escape, the exit).
 * 3. `receiveMain`: the command line (receive-options.ts) to help, version, a refusal or a run.
 * 4. `runReceive`: pg_receivewal's main() from the directory check on (pg_receivewal.c:816-925,
 *    spec §1.4-1.7): connect, then a slot action or the stream.
 * 5. Rendering: the stream's events as pg_receivewal's lines, and the --progress line.
 *
 * The client (connection, stream, sink) is loaded only when a command line asks to run
 * (`loadClient`), so `--version`, `-?` and refusals never parse it. Every collaborator of a run can
 * be replaced (`ReceiveEnvironment`), so the unit tests need neither a process nor a server.
 */

// 1. The fast path.

/**
 * The arguments for `wal receive`'s own entry point, or `undefined` when oclif must take the
 * command line: any other command, no command, or `--help` before `--` (oclif answers that one
 * anywhere on the line, before a command runs, and prints the same text through src/help.ts).
 */
export function receiveFastPathArguments(argv: readonly string[]): string[] | undefined {
  if (argv[0] !== 'receive') return undefined;
  const rest = argv.slice(1);
  for (const argument of rest) {
    if (argument === '--') break;
    if (argument === '--help') return undefined;
  }
  return rest;
}

import { DROP_IN_NAME } from './drop-in-name.js';

export { DROP_IN_NAME, invokedAsDropIn } from './drop-in-name.js';

// 2. The process around the command.

/**
 * bin/run.js: run the command and end the process with its exit code, as oclif's handler does.
 * `program` is the drop-in name when invoked under it, else `wal receive` (from the manifest).
 */
export async function main(argv: readonly string[], program?: string): Promise<never> {
  // oclif's Command module ignores EPIPE on stdout (`wal receive --version | head -c1`); so do we.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
  const exitCode = await runReceiveCommand(argv, { stdout: process.stdout, stderr: process.stderr }, program);
  process.exit(exitCode);
}

interface PackageManifest {
  readonly version: string;
  readonly oclif: { readonly bin: string };
}

/** The CLI's package.json, for the program name (oclif's `bin`) and the version oclif would report. */
function readManifest(): PackageManifest {
  return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as PackageManifest;
}

/** Runs `wal receive ARGS…` and returns the exit code; any error that escapes is reported as BaseCommand did. */
export async function runReceiveCommand(
  argv: readonly string[],
  io: Pick<ReceiveMainIo, 'stdout' | 'stderr'> = { stdout: process.stdout, stderr: process.stderr },
  programName?: string,
): Promise<number> {
  const manifest = readManifest();
  const program = programName ?? `${manifest.oclif.bin} receive`;
  try {
    return await receiveMain(argv, { program, version: manifest.version, ...io });
  } catch (error) {
    reportError(loggerFor(program, io.stderr, argv), error);
    return 1;
  }
}

/**
 * The run's logger. Under the drop-in name stderr is pg_receivewal's to the byte, so none of our
 * own wording is used (docs/adr/0006-receiver-deviations.md, "Messages").
 */
function loggerFor(program: string, output: ReceiveMainIo['stderr'], argv: readonly string[]): Logger {
  return new Logger({
    program,
    output,
    json: wantsJson(argv),
    ownWording: program !== DROP_IN_NAME,
    // The metrics' label for the one server of `wal receive`.
    fields: { server: 'default' },
  });
}

// 3. The command line.

export interface ReceiveMainIo {
  /** `wal receive`: starts every stderr line and names the command in the help hint. */
  readonly program: string;
  readonly version: string;
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  /** Replaces collaborators of the run (tests); the logger is made here from the command line. */
  readonly environment?: Omit<ReceiveEnvironment, 'logger'>;
}

/**
 * `wal receive ARGS…` from argv to exit code: help, version, refusals of the command line and
 * the run itself. The oclif command (commands/receive.ts) only calls this and exits with its result.
 */
export async function receiveMain(argv: readonly string[], io: ReceiveMainIo): Promise<number> {
  const logger = loggerFor(io.program, io.stderr, argv);
  let commandLine: ReturnType<typeof parseReceiveCommandLine>;
  try {
    commandLine = parseReceiveCommandLine(
      argv,
      io.program === DROP_IN_NAME ? PG_RECEIVEWAL_15_COMPRESSION : undefined,
    );
  } catch (error) {
    reportError(logger, error);
    return 1;
  }
  switch (commandLine.kind) {
    case 'help':
      io.stdout.write(receiveHelpText(io.program));
      return 0;
    case 'version':
      io.stdout.write(receiveVersionText(io.version, io.program));
      return 0;
    case 'run':
      return runReceive(commandLine.options, { ...io.environment, logger });
  }
}

// 4. The run.

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
  /** Sees every stream event and the failure that ends a run (a daemon's metrics). */
  readonly observer?: ReceiveObserver;
}

/** What a run reports besides its log lines: the metrics of @wal/metrics follow it. */
export interface ReceiveObserver {
  /** Every event of the stream, in order, before it is rendered; a `disconnected` one carries its error. */
  event(event: ReceiveEvent): void;
  /** The error that ends the run (not a stop signal): nothing is retried after it. */
  failed(error: unknown): void;
  /** -D s3://…: the sink's upload queue and confirmed position, to read whenever wanted. */
  uploads?(status: () => UploadStatus): void;
}

/** The client: connection, stream and sink (./receive-run.ts), loaded by the first run. */
type Client = typeof import('./receive-run.js');

function loadClient(): Promise<Client> {
  return import('./receive-run.js');
}

/** Raised when a replication command (slot create/drop) fails; keeps the server's SQLSTATE, DETAIL, HINT. */
export class ReplicationCommandError extends WalError {
  /** The command as sent: `DROP_REPLICATION_SLOT "name"`. */
  readonly command: string;
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
    // A ServerError's message is libpq's already (`ERROR:  …`, then DETAIL and HINT lines).
    const reason =
      cause instanceof WalError || server.severity === undefined
        ? String(server.message ?? cause)
        : `${server.severity}:  ${server.message}`;
    super('WAL_ERR_CLI_REPLICATION_COMMAND', `could not send replication command "${command}": ${reason}`, {
      cause,
      retryable: cause instanceof WalError ? cause.retryable : false,
    });
    this.command = command;
    this.sqlState = server.sqlState;
    this.detail = server.detail;
    this.hint = server.hint;
  }
}

const PROGRESS_REDRAW_INTERVAL_MS = 250;
/** --progress with JSON logs: one record per this many milliseconds at most. */
const PROGRESS_RECORD_INTERVAL_MS = 10_000;

/**
 * WAL handed to the sink and not written yet, at most (the stream's default is 4 MiB, for sinks
 * that write on other threads). With blocking writes a write is done when it returns; only while a
 * segment is closed (fsync, rename) and the next opened does WAL pile up, and what the kernel's
 * socket buffer holds meanwhile keeps the walsender sending anyway. What is held here is resident
 * memory, and a larger limit streamed no faster (bench/README.md, "Memory").
 */
const MAX_BYTES_IN_FLIGHT = 1024 * 1024;

/** The body of `wal receive`, after the command line was accepted. Returns the exit code. */
export async function runReceive(options: ReceiveOptions, environment: ReceiveEnvironment): Promise<number> {
  let run: ReceiveRun | undefined;
  try {
    run = new ReceiveRun(options, environment, await loadClient());
    return await run.execute();
  } catch (error) {
    run?.failed(error);
    reportError(environment.logger, error, { slot: options.slot });
    return 1;
  } finally {
    await run?.cleanUp();
  }
}

/** Double-quoted identifier with `"` doubled, as pg_receivewal sends slot names (streamutil.h). */
function quoted(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** get_destination_dir: the directory must exist and be readable; it is never created. */
export function checkDirectory(directory: string): void {
  try {
    opendirSync(directory).closeSync();
  } catch (error) {
    const reason = systemErrorText(error) ?? (error as Error).message;
    throw new CommandLineError(
      'WAL_ERR_CLI_DIRECTORY',
      `could not open directory "${directory}": ${reason}`,
      {
        cause: error,
      },
    );
  }
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

/**
 * One run: owns the stop signal, the password once asked, the trace file and the startup
 * connection until the stream or a slot action takes it.
 */
class ReceiveRun {
  private readonly options: ReceiveOptions;
  private readonly logger: Logger;
  private readonly environment: ReceiveEnvironment;
  private readonly client: Client;
  private readonly stop = new AbortController();
  private password: string | undefined;
  /** The password prompt is waiting for the user. */
  private prompting = false;
  private traceFile: number | undefined;
  private stopSignals: (() => void) | undefined;
  private unusedConnection: Connection | undefined;
  private readonly progressMeter: ProgressMeter | undefined;
  private lastProgressDrawMs: number | undefined;
  private lastProgressRecordMs: number | undefined;
  private observers: ReceiveObserver[] = [];
  private closeMetrics: (() => Promise<void>) | undefined;
  /** -D s3://…: the store, opened before connecting, and the sink that uploads to it. */
  private objectStorage: typeof import('./receive-store.js') | undefined;
  private store: (UploadStore & { close(): void }) | undefined;
  private s3Sink: S3Sink | undefined;

  constructor(options: ReceiveOptions, environment: ReceiveEnvironment, client: Client) {
    this.options = options;
    this.environment = environment;
    this.logger = environment.logger;
    this.client = client;
    this.progressMeter = options.progress && this.logger.canShowProgress ? new ProgressMeter() : undefined;
    if (environment.observer !== undefined) this.observers.push(environment.observer);
  }

  async execute(): Promise<number> {
    const { options } = this;
    if (options.action === 'stream') await this.checkArchive();
    if (options.action === 'stream' && options.metricsAddress !== undefined) await this.serveMetrics();
    const connectOnce = this.connector();
    if (options.password === 'before-connecting') this.password = await this.prompt();

    // The first connection failing ends the program, without the retry loop (spec §10 item 1).
    // No stop signal yet (see below), but --receive-timeout bounds it like every later one, except
    // while the password prompt waits for the user.
    const first = await this.client.boundConnect(connectOnce, {
      receiveTimeoutMs: options.receiveTimeoutMs,
      signal: undefined,
      isPaused: () => this.prompting,
    });
    this.unusedConnection = first;
    // Signals are trapped only now, so Ctrl-C at a password prompt still ends the program at once.
    this.stopSignals = (this.environment.onStopSignal ?? processStopSignals)(() => this.stop.abort());

    // receiveWal checks IDENTIFY_SYSTEM on every connection it makes; a slot action has no stream,
    // so it checks the connection itself first, as pg_receivewal's main() does.
    if (options.action === 'stream') return this.stream(connectOnce);
    await this.refuseDatabaseSpecific(first);
    if (options.action === 'drop-slot') return this.dropSlot(first);
    return this.createSlot(first);
  }

  /** --metrics-address: bound before connecting, so a port in use ends the run at once. */
  private async serveMetrics(): Promise<void> {
    // Loaded on use: prom-client is parsed only by runs that serve metrics.
    const { serveReceiveMetrics } = await import('./receive-metrics.js');
    const endpoint = await serveReceiveMetrics(this.options.metricsAddress!);
    this.observers.push(endpoint.observer);
    this.closeMetrics = endpoint.close;
    this.logger.info(`serving metrics at ${endpoint.url}`, { event: 'metrics-listening', url: endpoint.url });
  }

  /** The run ends with an error: observers see it once. */
  failed(error: unknown): void {
    for (const observer of this.observers) observer.failed(error);
    this.observers = [];
  }

  /**
   * get_destination_dir, before connecting: -D must be a directory; with -D s3://… the spool must
   * be one and the URL must be valid (the store is opened; nothing is sent yet).
   */
  private async checkArchive(): Promise<void> {
    const { options } = this;
    if (!isObjectStoreLocation(options.directory)) {
      checkDirectory(options.directory!);
      return;
    }
    checkDirectory(options.spool!);
    this.objectStorage = await import('./receive-store.js');
    this.store = await this.objectStorage.openArchiveStore(
      options.directory!,
      this.environment.env ?? process.env,
    );
  }

  async cleanUp(): Promise<void> {
    const closeMetrics = this.closeMetrics;
    this.closeMetrics = undefined;
    await closeMetrics?.();
    this.store?.close();
    this.store = undefined;
    this.stopSignals?.();
    this.logger.clearProgress();
    this.unusedConnection?.destroy();
    this.unusedConnection = undefined;
    if (this.traceFile !== undefined) closeSync(this.traceFile);
    this.traceFile = undefined;
  }

  /**
   * A function that opens one replication connection: the keywords of -d (parsed now, before any
   * connection, as libpq does), -h/-p/-U, the password once known, and a prompt unless -w.
   */
  private connector(): (signal?: AbortSignal) => Promise<Connection> {
    const { options } = this;
    const parse = this.environment.parseConnectionString ?? this.client.parseConnectionString;
    const fromConnectionString =
      options.connectionString === undefined ? undefined : parse(options.connectionString);
    const trace = this.openTrace();
    const connect = this.environment.connect ?? this.client.connect;
    return async (signal) => {
      const parameters = replicationConnectionParameters(fromConnectionString, {
        host: options.host,
        username: options.username,
        port: options.port,
        password: this.password,
      });
      const connectOptions: ConnectOptions = {
        env: this.environment.env ?? process.env,
        ...(options.password === 'never' ? {} : { passwordPrompt: () => this.promptAndKeep() }),
        ...(trace === undefined ? {} : { trace }),
        onWarning: (message: string) => this.logger.warning(message),
        // The server's NOTICEs and WARNINGs, printed as libpq's notice processor prints them.
        onNotice: (notice) => this.logger.serverNotice(notice),
        ...(signal === undefined ? {} : { signal }),
      };
      return connect(parameters, connectOptions);
    };
  }

  /**
   * A physical replication connection has no database. The error is the stream's own
   * (WAL_ERR_STREAM_DATABASE_SPECIFIC), so the user sees one code and one message for it whichever
   * action found it.
   */
  private async refuseDatabaseSpecific(connection: Connection): Promise<void> {
    const system = await this.bounded(connection, 'IDENTIFY_SYSTEM', () => connection.identifySystem());
    if (system.databaseName === null) return;
    throw new this.client.StreamError(
      'WAL_ERR_STREAM_DATABASE_SPECIFIC',
      `replication connection is unexpectedly database specific (database "${escapeControlCharacters(system.databaseName)}")`,
    );
  }

  private async dropSlot(connection: Connection): Promise<number> {
    const slot = this.options.slot!;
    if (this.options.verbose > 0) this.logger.info(`dropping replication slot "${slot}"`);
    try {
      await this.bounded(connection, 'DROP_REPLICATION_SLOT', () => connection.dropReplicationSlot(slot));
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
      await this.bounded(connection, 'CREATE_REPLICATION_SLOT', () =>
        connection.createReplicationSlot(slot, { reserveWal: false }),
      );
    } catch (error) {
      const sqlState = (error as { sqlState?: string }).sqlState;
      if (!(this.options.ifNotExists && sqlState === '42710')) {
        throw new ReplicationCommandError(`CREATE_REPLICATION_SLOT ${quoted(slot)} PHYSICAL`, error);
      }
    }
    await this.closeUnused();
    return 0;
  }

  /**
   * A command of a slot action, ended by a stop signal or --receive-timeout (pg_receivewal would
   * wait for the server forever); the connection is destroyed then.
   */
  private bounded<T>(connection: Connection, name: string, work: () => Promise<T>): Promise<T> {
    const bounds = { receiveTimeoutMs: this.options.receiveTimeoutMs, signal: this.stop.signal };
    return this.client.boundCommand(connection, name, bounds, work);
  }

  /** Streams until the end position, a stop signal, or a failure the stream does not retry. */
  private async stream(connectOnce: (signal?: AbortSignal) => Promise<Connection>): Promise<number> {
    // The first streaming attempt reuses the startup connection, as pg_receivewal's StreamLog does.
    const connect = async (signal: AbortSignal): Promise<Connection> => {
      const reused = this.unusedConnection;
      this.unusedConnection = undefined;
      return reused ?? connectOnce(signal);
    };
    const receive = this.environment.receiveWal ?? this.client.receiveWal;
    let exitCode = 0;
    let failure: unknown;
    try {
      for await (const event of receive(this.receiveWalOptions(connect))) {
        const ended = this.handleEvent(event);
        if (ended !== undefined) {
          exitCode = ended;
          break;
        }
      }
    } catch (error) {
      failure = error;
      exitCode = this.streamFailed(error);
    }
    return this.finishUploads(exitCode, failure);
  }

  /**
   * -D s3://…: once the stream ended, what waits in the spool and the open segment's .partial go
   * to the store. A failure is reported (unless the stream already reported it) and ends with 1;
   * the spool keeps the files for the next run.
   */
  private async finishUploads(exitCode: number, streamFailure: unknown): Promise<number> {
    const sink = this.s3Sink;
    if (sink === undefined) return exitCode;
    try {
      if (this.options.verbose > 0) this.logger.info(`uploading what waits in the spool to ${sink.storeUrl}`);
      await sink.finish();
    } catch (error) {
      const reported = error === streamFailure || (error as { cause?: unknown }).cause === streamFailure;
      if (!reported && !(this.stop.signal.aborted && isAbort(error))) reportError(this.logger, error);
      return 1;
    }
    return exitCode;
  }

  private receiveWalOptions(connect: (signal: AbortSignal) => Promise<Connection>): ReceiveWalOptions {
    const { options } = this;
    return {
      connect,
      sink: this.createSink(),
      ...(options.slot === undefined ? {} : { slot: options.slot }),
      ...(options.endLsn === undefined ? {} : { endLsn: options.endLsn }),
      statusIntervalMs: options.statusIntervalMs,
      synchronous: options.synchronous,
      noLoop: options.noLoop,
      maxBytesInFlight: MAX_BYTES_IN_FLIGHT,
      ...(options.receiveTimeoutMs === undefined ? {} : { receiveTimeoutMs: options.receiveTimeoutMs }),
      signal: this.stop.signal,
    };
  }

  private createSink(): WalSink {
    const { options, logger } = this;
    const sinkOptions = {
      directory: options.directory!,
      compression: options.compression,
      sync: options.sync,
    };
    if (this.environment.createSink !== undefined) return this.environment.createSink(sinkOptions);
    const directoryOptions: Omit<DirectorySinkOptions, 'directory'> = {
      compression: options.compression,
      sync: options.sync,
      // A dedicated process: write as pg_receivewal does, without a thread-pool hop per message.
      blockingWrites: true,
      // Under the drop-in name a new segment is padded with zeros as pg_receivewal pads it, so a
      // full disk shows where it shows for pg_receivewal: when the segment opens (ADR 0006 item 3).
      padding: logger.ownWording ? 'extend' : 'zeros',
      // pg_receivewal's scan warnings (`segment file "…" has incorrect size …, skipping`).
      onWarning: (message: string) => logger.warning(message),
      // `not renaming "….partial", segment is not complete`, which it prints without -v.
      onNotice: (message: string) => logger.info(message, { event: 'partial-kept' }),
    };
    const sink =
      this.store === undefined
        ? new this.client.DirectorySink({ ...directoryOptions, directory: options.directory! })
        : this.createS3Sink(this.store, directoryOptions);
    return options.verify ? new this.client.VerifyingSink(sink) : sink;
  }

  /** -D s3://… --spool DIR: the spool written like -D DIR, uploaded to the store. */
  private createS3Sink(
    store: UploadStore,
    directoryOptions: Omit<DirectorySinkOptions, 'directory'>,
  ): S3Sink {
    const { options, logger } = this;
    this.s3Sink = new this.objectStorage!.S3Sink({
      ...directoryOptions,
      store,
      spool: options.spool!,
      ack: options.ack,
      partialUploadIntervalMs: options.partialUploadIntervalMs,
      uploadConcurrency: options.uploadConcurrency,
      signal: this.stop.signal,
      onUploadRetry: (error, retryInMs) => {
        const code = (error as { code?: string }).code;
        logger.warning(`${(error as Error).message}; trying again in ${formatSeconds(retryInMs)} seconds`, {
          event: 'upload-retry',
          ...(code === undefined ? {} : { code }),
          retryInMs,
        });
      },
    });
    const sink = this.s3Sink;
    for (const observer of this.observers) observer.uploads?.(() => sink.uploadStatus());
    return sink;
  }

  /** One event of the stream: rendered; an exit code when it ends the run. */
  private handleEvent(event: ReceiveEvent): number | undefined {
    for (const observer of this.observers) observer.event(event);
    switch (event.type) {
      case 'progress':
        this.drawProgress(event);
        return undefined;
      case 'disconnected':
        return this.disconnected(event);
      default:
        renderEvent(this.logger, this.options.verbose, event);
        return undefined;
    }
  }

  /** A failed connection the stream retries: pg_receivewal's lines, or the end with --no-loop. */
  private disconnected(event: Extract<ReceiveEvent, { type: 'disconnected' }>): number | undefined {
    const { logger } = this;
    reportError(logger, event.error, { slot: this.options.slot });
    if (this.options.noLoop) {
      this.failed(event.error);
      logger.error('disconnected');
      return 1;
    }
    logger.info(`disconnected; waiting ${formatSeconds(event.retryInMs)} seconds to try again`, {
      event: 'disconnected',
      retryInMs: event.retryInMs,
    });
    return undefined;
  }

  private streamFailed(error: unknown): number {
    if (this.stop.signal.aborted && isAbort(error)) return 0;
    this.failed(error);
    reportError(this.logger, error, { slot: this.options.slot });
    // pg_receivewal's main loop ends a --no-loop run with "disconnected" after a failure it would
    // otherwise have retried; fatal failures end with their own message only.
    if (this.options.noLoop && this.client.classifyError(error).retry) this.logger.error('disconnected');
    return 1;
  }

  /** --progress: records every sample, redraws a few times a second (the stream reports per message). */
  private drawProgress(event: Extract<ReceiveEvent, { type: 'progress' }>): void {
    if (this.options.progress && this.logger.json) this.recordProgress(event);
    const meter = this.progressMeter;
    if (meter === undefined) return;
    const at = (this.environment.now ?? Date.now)();
    meter.record(event, at);
    const last = this.lastProgressDrawMs;
    if (last === undefined || at - last >= PROGRESS_REDRAW_INTERVAL_MS) {
      this.logger.progress(meter.describe());
      this.lastProgressDrawMs = at;
    }
  }

  /**
   * --progress with JSON logs: a record every few seconds, its positions named as the metrics name
   * them (docs/adr/0013-metrics.md, "Logs").
   */
  private recordProgress(event: Extract<ReceiveEvent, { type: 'progress' }>): void {
    const at = (this.environment.now ?? Date.now)();
    const last = this.lastProgressRecordMs;
    if (last !== undefined && at - last < PROGRESS_RECORD_INTERVAL_MS) return;
    this.lastProgressRecordMs = at;
    const { receivedLsn, durableLsn, serverWalEnd } = event;
    const lag = serverWalEnd > durableLsn ? serverWalEnd - durableLsn : 0n;
    this.logger.info(
      `received ${formatLsn(receivedLsn)}, flushed ${formatLsn(durableLsn)}, server ${formatLsn(serverWalEnd)}`,
      {
        event: 'progress',
        received_lsn: formatLsn(receivedLsn),
        flushed_lsn: formatLsn(durableLsn),
        server_lsn: formatLsn(serverWalEnd),
        lag_bytes: Number(lag),
      },
    );
  }

  private async promptAndKeep(): Promise<string> {
    this.prompting = true;
    try {
      this.password = await this.prompt();
    } finally {
      this.prompting = false;
    }
    return this.password;
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

/** An abort signal ended it: a stop, not a failure. */
export function isAbort(error: unknown): boolean {
  return (
    (error instanceof Error && error.name === 'AbortError') ||
    (error instanceof WalError && /ABORT/.test(error.code))
  );
}

// 5. Rendering.

type RenderedEvent = Exclude<ReceiveEvent, { type: 'progress' } | { type: 'disconnected' }>;

interface EventLine {
  /** The -v count from which the line is printed. */
  readonly verbosity: number;
  readonly message: string;
  /** The --json fields beside the message. */
  readonly fields: Record<string, unknown>;
}

/** A stream event as pg_receivewal's line (`-v`), or the server's facts (`-vv`). */
function renderEvent(logger: Logger, verbose: number, event: RenderedEvent): void {
  // The server's facts at -vv are ours: pg_receivewal has no such line.
  if (event.type === 'connected' && !logger.ownWording) return;
  const line = eventLine(event);
  if (verbose >= line.verbosity) logger.info(line.message, line.fields);
}

function eventLine(event: RenderedEvent): EventLine {
  const position = (lsn: bigint, timeline: number) => ({ event: event.type, lsn: formatLsn(lsn), timeline });
  switch (event.type) {
    case 'connected':
      return {
        verbosity: 2,
        message:
          `connected: server version ${event.serverVersion}, system identifier ${event.systemId}, ` +
          `timeline ${event.timeline}, WAL segment size ${event.segmentSize} bytes`,
        fields: {
          event: event.type,
          systemId: event.systemId,
          timeline: event.timeline,
          serverVersion: event.serverVersion,
        },
      };
    case 'streaming-started':
      return {
        verbosity: 1,
        message: `starting log streaming at ${formatLsn(event.lsn)} (timeline ${event.timeline})`,
        fields: position(event.lsn, event.timeline),
      };
    case 'segment-finished':
      return {
        verbosity: 1,
        message: `finished segment at ${formatLsn(event.lsn)} (timeline ${event.timeline})`,
        fields: position(event.lsn, event.timeline),
      };
    case 'timeline-switched':
      return {
        verbosity: 1,
        message: `switched to timeline ${event.timeline} at ${formatLsn(event.lsn)}`,
        fields: position(event.lsn, event.timeline),
      };
    // pg_receivewal says it when it decides to stop and again once the server ended COPY.
    case 'stopping':
    case 'stopped':
      return {
        verbosity: 1,
        message:
          event.reason === 'aborted'
            ? 'received interrupt signal, exiting'
            : `stopped log streaming at ${formatLsn(event.lsn)} (timeline ${event.timeline})`,
        fields: {
          event: event.type,
          reason: event.reason,
          lsn: formatLsn(event.lsn),
          timeline: event.timeline,
        },
      };
  }
}
