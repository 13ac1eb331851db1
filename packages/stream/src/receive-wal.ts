import type { ReplicationStream } from '@wal/libpq-lite';
import {
  escapeControlCharacters,
  formatLsn,
  isValidWalSegmentSize,
  parseWalSegmentSizeSetting,
  type WalError,
} from '@wal/protocol';
import { boundConnect, guardCommands } from './command-guard.js';
import type { ReplicationConnection } from './connection.js';
import { type Clock, CopyStream, isValidBytesInFlight, systemClock } from './copy-stream.js';
import { StreamError } from './errors.js';
import { segmentStartOf } from './positions.js';
import { classifyError, ReconnectBackoff } from './reconnect.js';
import { explainRemovedWal, type ResumePoint, slotInvalidatedError } from './slot-invalidation.js';
import { chooseStartPosition, type StartPositionSource } from './start-position.js';
import { checkNextTimeline, ensureHistoryFile } from './timeline.js';
import type { ReceiveEvent, ReceiveWalOptions } from './types.js';

export type { ReceiveEvent, ReceiveWalOptions } from './types.js';

/** Oldest server we stream from: SHOW wal_segment_size exists from PostgreSQL 10 on. */
export const MINIMUM_SERVER_VERSION = 100000;

interface Settings {
  connect: (signal: AbortSignal) => Promise<ReplicationConnection>;
  sink: ReceiveWalOptions['sink'];
  slot: string | undefined;
  endLsn: bigint | undefined;
  maxBytesInFlight: number | undefined;
  statusIntervalMs: number;
  synchronous: boolean;
  noLoop: boolean;
  receiveTimeoutMs: number | undefined;
  reconnectDelayMs: number;
  signal: AbortSignal | undefined;
  clock: Clock;
}

function invalidOption(message: string): StreamError {
  return new StreamError('WAL_ERR_STREAM_INVALID_OPTION', message);
}

function checkDuration(name: string, value: number | undefined, minimum: number): void {
  if (value !== undefined && (!Number.isFinite(value) || value < minimum)) {
    throw invalidOption(`${name} must be a finite number of milliseconds >= ${minimum}, got ${value}`);
  }
}

function settingsFrom(options: ReceiveWalOptions, clock: Clock): Settings {
  if (typeof options.connect !== 'function')
    throw invalidOption('connect must be a function returning a Connection');
  if (options.sink === undefined || options.sink === null) throw invalidOption('sink is required');
  if (options.slot !== undefined && (typeof options.slot !== 'string' || options.slot.length === 0)) {
    throw invalidOption('slot must be a non-empty slot name');
  }
  if (options.endLsn !== undefined && (typeof options.endLsn !== 'bigint' || options.endLsn < 0n)) {
    throw invalidOption('endLsn must be a non-negative bigint LSN (use parseLsn from @wal/protocol)');
  }
  checkDuration('statusIntervalMs', options.statusIntervalMs, 0);
  checkDuration('receiveTimeoutMs', options.receiveTimeoutMs, 1);
  checkDuration('reconnectDelayMs', options.reconnectDelayMs, 0);
  if (options.maxBytesInFlight !== undefined && !isValidBytesInFlight(options.maxBytesInFlight)) {
    throw invalidOption(
      `maxBytesInFlight must be a positive whole number of bytes, got ${options.maxBytesInFlight}`,
    );
  }
  return {
    connect: options.connect,
    sink: options.sink,
    slot: options.slot,
    endLsn: options.endLsn,
    maxBytesInFlight: options.maxBytesInFlight,
    statusIntervalMs: options.statusIntervalMs ?? 10_000,
    synchronous: options.synchronous ?? false,
    noLoop: options.noLoop ?? false,
    receiveTimeoutMs: options.receiveTimeoutMs,
    reconnectDelayMs: options.reconnectDelayMs ?? 5000,
    signal: options.signal,
    clock,
  };
}

/**
 * Streams physical WAL into `options.sink`, reconnecting after failures: pg_receivewal's main loop
 * and StreamLog (pg_receivewal.c) around receivelog.c's ReceiveXlogStream. Pull-based: nothing is
 * read from the server while the consumer is not iterating. Ends after a 'stopped' event (endpos
 * reached, or `signal` aborted); throws a WalError when it cannot go on (first connection failed,
 * fatal error, or any failure with `noLoop`). Breaking out of the loop closes the sink and the
 * connection.
 */
export function receiveWal(options: ReceiveWalOptions): AsyncIterable<ReceiveEvent> {
  return receiveWalWithClock(options, systemClock);
}

/** receiveWal with an injected clock (tests). */
export function receiveWalWithClock(options: ReceiveWalOptions, clock: Clock): AsyncIterable<ReceiveEvent> {
  const settings = settingsFrom(options, clock);
  return { [Symbol.asyncIterator]: () => run(settings) };
}

/** What survives a reconnect. */
interface RunState {
  systemId: bigint | undefined;
  segmentSize: number | undefined;
  /** Where the last stream got to (segment start, timeline): the resume point when the sink keeps none. */
  previous: { lsn: bigint; timeline: number } | undefined;
}

async function* run(settings: Settings): AsyncGenerator<ReceiveEvent, void, undefined> {
  const state: RunState = { systemId: undefined, segmentSize: undefined, previous: undefined };
  const backoff = new ReconnectBackoff(settings.reconnectDelayMs);
  let first = true;
  for (;;) {
    if (settings.signal?.aborted) {
      // pg_receivewal exits 0 when stopped during the reconnect sleep.
      if (state.previous !== undefined) {
        yield {
          type: 'stopped',
          reason: 'aborted',
          lsn: state.previous.lsn,
          timeline: state.previous.timeline,
        };
      }
      return;
    }
    let failure: unknown;
    let fatal = false;
    let streamedWal = false;
    let connection: ReplicationConnection | undefined;
    let diagnosis: { serverVersion: number; resume: ResumePoint | undefined } = {
      serverVersion: 0,
      resume: undefined,
    };
    const bounds = { receiveTimeoutMs: settings.receiveTimeoutMs, signal: settings.signal };
    try {
      // A server that accepts and then says nothing (a stopped postmaster) must not hold the loop.
      connection = await boundConnect(settings.connect, bounds);
    } catch (error) {
      // Stopped while connecting: a stop, not a failure.
      if (settings.signal?.aborted) continue;
      // pg_receivewal: a failed first connection exits 1, with no retry (spec §1.4, §10 item 1).
      if (first) throw error;
      failure = error;
    }
    if (connection !== undefined) {
      const guarded = guardCommands(connection, bounds);
      const session = new Session(settings, guarded, state, first);
      first = false;
      try {
        yield* session.run();
        return;
      } catch (error) {
        failure = error;
        fatal = session.inStartupChecks;
      } finally {
        streamedWal = session.receivedWal;
        await session.cleanup();
        diagnosis = { serverVersion: connection.serverVersion, resume: session.resumePoint };
      }
    }
    // Stopped while a command waited (the guard destroyed the connection): a stop, not a failure.
    if (settings.signal?.aborted) continue;
    failure =
      (await explainRemovedWal(failure, {
        ...diagnosis,
        slot: settings.slot,
        segmentSize: state.segmentSize,
        // The diagnosis asks the server once more, within the same bounds as any attempt.
        connect: async () => guardCommands(await boundConnect(settings.connect, bounds), bounds),
      })) ?? failure;
    const classification = classifyError(failure);
    if (fatal || !classification.retry || settings.noLoop) throw classification.error;
    if (streamedWal) backoff.reset();
    const delay = backoff.next();
    yield { type: 'disconnected', error: classification.error as WalError, retryInMs: delay };
    await sleepUnlessAborted(delay, settings.signal);
  }
}

function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    // Not unref'd: the loop must stay alive while it waits to reconnect.
    const timer = setTimeout(finish, ms);
    signal?.addEventListener('abort', finish, { once: true });
    function finish(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      resolve();
    }
  });
}

/** The server's data_directory_mode (`%o`, e.g. '0750') -> pg_file_create_mode (0600, or 0640 with group access). */
export function fileModeFromDataDirectoryMode(text: string): number {
  if (!/^[0-7]{1,6}$/.test(text.trim())) {
    throw new StreamError(
      'WAL_ERR_STREAM_DATA_DIRECTORY_MODE',
      `group access flag could not be parsed: ${JSON.stringify(text)} (SHOW data_directory_mode should be an octal mode such as 0700)`,
    );
  }
  const mode = Number.parseInt(text.trim(), 8);
  // PostgreSQL's SetDataDirectoryCreatePermFromMode: group access when the mode has 0750 set.
  return (mode & 0o750) === 0o750 ? 0o640 : 0o600;
}

/** SHOW wal_segment_size -> bytes, checked (RetrieveWalSegSize, streamutil.c:277-342). */
export function segmentSizeFromSetting(text: string): number {
  let size: number;
  try {
    size = parseWalSegmentSizeSetting(text);
  } catch (error) {
    throw new StreamError(
      'WAL_ERR_STREAM_SEGMENT_SIZE',
      `could not use the server's WAL segment size: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  if (!isValidWalSegmentSize(size)) {
    throw new StreamError(
      'WAL_ERR_STREAM_SEGMENT_SIZE',
      `remote server reported invalid WAL segment size (${size} bytes); the WAL segment size must be a power of two between 1 MB and 1 GB.`,
    );
  }
  return size;
}

/** One connection: pg_receivewal's StreamLog with ReceiveXlogStream's loop over timelines. */
class Session {
  readonly #settings: Settings;
  readonly #connection: ReplicationConnection;
  readonly #state: RunState;
  readonly #firstConnection: boolean;
  /** True while the server checks of the first connection run: any failure there is fatal (pg_receivewal exits 1). */
  inStartupChecks = false;
  #timeline = 0;
  #segmentSize = 0;
  /** The COPY running, until it ended normally. */
  #copy: CopyStream | undefined;
  #receivedWal = false;
  /** Where this session's stream started from, until it received WAL. */
  #startSource: StartPositionSource | undefined;

  constructor(
    settings: Settings,
    connection: ReplicationConnection,
    state: RunState,
    firstConnection: boolean,
  ) {
    this.#settings = settings;
    this.#connection = connection;
    this.#state = state;
    this.#firstConnection = firstConnection;
  }

  async *run(): AsyncGenerator<ReceiveEvent, void, undefined> {
    const settings = this.#settings;
    const connection = this.#connection;
    const { sink } = settings;

    this.inStartupChecks = this.#firstConnection;
    const { systemId, timeline: serverTimeline, segmentSize, identify } = await this.#checkServer();
    this.inStartupChecks = false;
    this.#segmentSize = segmentSize;
    yield {
      type: 'connected',
      systemId,
      timeline: serverTimeline,
      serverVersion: connection.serverVersion,
      segmentSize,
    };

    const start = await chooseStartPosition({
      connection,
      sink,
      identify,
      segmentSize,
      slot: settings.slot,
      previous: this.#state.previous,
    });
    this.#startSource = start.source;
    let lsn = start.lsn;
    let timeline = start.timeline;
    this.#remember(lsn, timeline);
    // Once per connection, as pg_receivewal's StreamLog prints it: not again after a timeline
    // switch, and also when endLsn lies before the start.
    yield { type: 'streaming-started', lsn, timeline };

    for (;;) {
      await ensureHistoryFile(connection, sink, timeline);
      // Before START_REPLICATION (receivelog.c:571-572): an endpos below the start, or a stop request.
      if (settings.endLsn !== undefined && settings.endLsn < lsn) {
        yield { type: 'stopped', reason: 'endpos', lsn, timeline };
        return;
      }
      if (settings.signal?.aborted) {
        yield { type: 'stopped', reason: 'aborted', lsn, timeline };
        return;
      }
      const started = await this.#startReplication(lsn, timeline, start.source);
      let next: { timeline: number; startLsn: bigint };
      if (started.kind === 'no-copy') {
        // Requested exactly at the end of a historic timeline: the server skips COPY and sends the
        // next timeline at once. pg_receivewal fails here with an empty message and retries forever
        // (spec §10 item 8); the walreceiver treats it as "nothing more on this timeline".
        const reported = started.result.nextTimeline;
        if (reported === undefined) {
          throw new StreamError(
            'WAL_ERR_STREAM_TERMINATED',
            `the server has no WAL to stream at ${formatLsn(lsn)} on timeline ${timeline} and reported no next timeline`,
            { retryable: true },
          );
        }
        checkNextTimeline({ timeline, stopLsn: lsn }, reported);
        next = reported;
      } else {
        const outcome = yield* this.#stream(started, lsn, timeline);
        if (outcome.kind === 'stopped') {
          yield { type: 'stopped', reason: outcome.reason, lsn: outcome.lsn, timeline };
          return;
        }
        next = outcome.next;
      }
      timeline = next.timeline;
      lsn = segmentStartOf(next.startLsn, segmentSize);
      this.#remember(lsn, timeline);
      yield { type: 'timeline-switched', timeline, lsn: next.startLsn };
    }
  }

  /** START_REPLICATION; an invalidated slot becomes a SlotInvalidatedError (no retry can help). */
  async #startReplication(lsn: bigint, timeline: number, startSource: StartPositionSource) {
    const slot = this.#settings.slot;
    try {
      return await this.#connection.startReplication({
        ...(slot === undefined ? {} : { slot }),
        startLsn: lsn,
        timeline,
      });
    } catch (error) {
      // After a stream in this session, the target holds the WAL before lsn whatever the start was.
      const source = this.receivedWal ? 'previous-stream' : startSource;
      throw slotInvalidatedError(error, slot, { lsn, source }) ?? error;
    }
  }

  /**
   * Where the next stream would start, and what the target holds before it (after cleanup()).
   * Undefined before a start position was chosen.
   */
  get resumePoint(): ResumePoint | undefined {
    const previous = this.#state.previous;
    if (this.#startSource === undefined || previous === undefined) return undefined;
    return { lsn: previous.lsn, source: this.receivedWal ? 'previous-stream' : this.#startSource };
  }

  /** WAL was written during this session (then the reconnect backoff starts over). */
  get receivedWal(): boolean {
    return this.#receivedWal || this.#copy?.receivedWal === true;
  }

  async *#stream(stream: ReplicationStream, lsn: bigint, timeline: number) {
    const settings = this.#settings;
    const copy = new CopyStream(stream, {
      sink: settings.sink,
      segmentSize: this.#segmentSize,
      timeline,
      startLsn: lsn,
      endLsn: settings.endLsn,
      statusIntervalMs: settings.statusIntervalMs,
      reportFlush: settings.slot !== undefined || settings.synchronous,
      synchronous: settings.synchronous,
      receiveTimeoutMs: settings.receiveTimeoutMs,
      signal: settings.signal,
      clock: settings.clock,
      maxBytesInFlight: settings.maxBytesInFlight,
    });
    // From here on the sink is closed whatever happens, even if the consumer stops iterating now.
    this.#copy = copy;
    const outcome = yield* copy.run();
    this.#copy = undefined;
    this.#receivedWal ||= copy.receivedWal;
    this.#remember(segmentStartOf(copy.writtenLsn, this.#segmentSize), timeline);
    return outcome;
  }

  #remember(lsn: bigint, timeline: number): void {
    this.#timeline = timeline;
    this.#state.previous = { lsn, timeline };
  }

  /** Server checks of every connection (pg_receivewal main + GetConnection + ReceiveXlogStream). */
  async #checkServer() {
    const settings = this.#settings;
    const connection = this.#connection;
    if (connection.serverVersion < MINIMUM_SERVER_VERSION) {
      throw new StreamError(
        'WAL_ERR_STREAM_SERVER_VERSION',
        `incompatible server version ${connection.serverVersion}; streaming from servers older than PostgreSQL 10 is not supported.`,
      );
    }
    const integerDatetimes = connection.parameters.get('integer_datetimes');
    if (integerDatetimes !== 'on') {
      throw new StreamError(
        'WAL_ERR_STREAM_INTEGER_DATETIMES',
        integerDatetimes === undefined
          ? 'could not determine server setting for "integer_datetimes"'
          : '"integer_datetimes" compile flag does not match server (it must be on)',
      );
    }
    // data_directory_mode exists from PostgreSQL 11 on (streamutil.c:240-267).
    const fileMode =
      connection.serverVersion >= 110000
        ? fileModeFromDataDirectoryMode(await connection.show('data_directory_mode'))
        : undefined;
    const identify = await connection.identifySystem();
    if (identify.databaseName !== null) {
      throw new StreamError(
        'WAL_ERR_STREAM_DATABASE_SPECIFIC',
        `${settings.slot === undefined ? 'replication connection' : `replication connection using slot "${settings.slot}"`} is unexpectedly database specific (database "${escapeControlCharacters(identify.databaseName)}"); connect with replication=true, not replication=database.`,
      );
    }
    const segmentSize = segmentSizeFromSetting(await connection.show('wal_segment_size'));
    // pg_receivewal learns both once; we re-check them on every reconnect (spec §10 item 3).
    const state = this.#state;
    if (state.systemId !== undefined && state.systemId !== identify.systemId) {
      throw new StreamError(
        'WAL_ERR_STREAM_SYSTEM_ID_CHANGED',
        `system identifier changed from ${state.systemId} to ${identify.systemId} after reconnecting; this is another database cluster. Stream it into another target.`,
      );
    }
    if (state.segmentSize !== undefined && state.segmentSize !== segmentSize) {
      throw new StreamError(
        'WAL_ERR_STREAM_SEGMENT_SIZE_CHANGED',
        `WAL segment size changed from ${state.segmentSize} to ${segmentSize} bytes after reconnecting; this is another database cluster. Stream it into another target.`,
      );
    }
    state.systemId = identify.systemId;
    state.segmentSize = segmentSize;
    await settings.sink.prepare({
      systemId: identify.systemId,
      segmentSize,
      ...(fileMode === undefined ? {} : { fileMode }),
    });
    return { systemId: identify.systemId, timeline: identify.timeline, segmentSize, identify };
  }

  /**
   * After the session, whatever happened: close the sink when COPY did not end normally (the open
   * segment stays `.partial`, durably: pg_receivewal's CLOSE_NO_RENAME on the error path), then
   * close the connection (Terminate), or destroy it when closing fails.
   */
  async cleanup(): Promise<void> {
    const copy = this.#copy;
    if (copy !== undefined) {
      this.#copy = undefined;
      this.#receivedWal ||= copy.receivedWal;
      if (copy.receivedWal) {
        this.#remember(segmentStartOf(copy.writtenLsn, this.#segmentSize), this.#timeline);
      }
      try {
        await copy.close('failure');
      } catch {
        // The streaming error is what gets reported; a close failure after it adds nothing the
        // next attempt's sink.prepare/resumePoint would not report again.
      }
    }
    try {
      await this.#connection.close();
    } catch {
      this.#connection.destroy();
    }
  }
}
