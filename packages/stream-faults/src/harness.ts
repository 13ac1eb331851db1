/**
 * Helpers of the fault suite: the receiver — `receiveWal` over a `DirectorySink` here, the built
 * `wal receive` binary in apps/cli/src/faults — against the fake walsender's scenarios.
 *
 * The oracle for stored WAL is the fake server's own WAL generator (`server.model`), never the
 * receiver's output: a complete segment must equal `generator.segmentBytes(n)` of its timeline, and a
 * `.partial` segment must be a prefix of it followed by zeros. File names are parsed here with a
 * regular expression of their own, not with `@wal/protocol`.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createFakeWalsender,
  type FakeWalsender,
  type FakeWalsenderOptions,
  type Script,
  type ServeHooks,
  type Session,
} from '@wal/fake-walsender';
import { type ConnectOptions, connect } from '@wal/libpq-lite';
import { WalError } from '@wal/protocol';
import { DirectorySink } from '@wal/sink-fs';
import { type ReceiveEvent, type ReceiveWalOptions, receiveWal, type WalSink } from '@wal/stream';
import { expect } from 'vitest';

export const MEGABYTE = 1024 * 1024;
/** One segment of the suite's servers (1 MB unless a test says otherwise), as an LSN distance. */
export const SEGMENT = BigInt(MEGABYTE);
/** The ready scenarios' flush position with 1 MB segments: origin (segment 1) + 3.5 segments. */
export const FLUSH_LSN = SEGMENT + 3n * SEGMENT + SEGMENT / 2n;
/** Scenario parameters: IDENTIFY_SYSTEM reports a position inside segment 1, the stream starts there. */
export const HAPPY = { reportedLsn: '0/100090' };

// ---------------------------------------------------------------------------------------------
// Servers and directories
// ---------------------------------------------------------------------------------------------

const servers = new Set<FakeWalsender>();
const roots = new Set<string>();

/** A fake walsender with 1 MB segments unless the parameters say otherwise; closed by `cleanUp()`. */
export async function startServer(
  scenario: string,
  parameters: Record<string, string> = {},
  options: Omit<FakeWalsenderOptions, 'scenario' | 'parameters'> = {},
): Promise<FakeWalsender> {
  const server = await createFakeWalsender({
    scenario,
    parameters: { segmentSizeMb: '1', ...parameters },
    timeoutMs: 5_000,
    ...options,
  });
  servers.add(server);
  return server;
}

/**
 * A fresh target directory `<root>/wal` inside its own temporary root, so that a file written
 * outside the target (a '../' history file name) shows up as a sibling in the root.
 */
export function makeTarget(): { root: string; directory: string } {
  const root = mkdtempSync(join(tmpdir(), 'wal-faults-'));
  roots.add(root);
  const directory = join(root, 'wal');
  mkdirSync(directory);
  return { root, directory };
}

export async function cleanUp(): Promise<void> {
  await Promise.all([...servers].map((server) => server.close()));
  servers.clear();
  for (const root of roots) rmSync(root, { recursive: true, force: true });
  roots.clear();
}

// ---------------------------------------------------------------------------------------------
// The library receiver
// ---------------------------------------------------------------------------------------------

/**
 * A replication connection to the fake server, without PG* variables or ~/.pgpass. The signal the
 * receive loop passes (its stop signal, or its receive timeout) aborts the attempt.
 */
export function connectTo(
  server: FakeWalsender,
  extra: Record<string, string> = {},
  options: Omit<ConnectOptions, 'env'> = {},
): (signal?: AbortSignal) => ReturnType<typeof connect> {
  return (signal) =>
    connect(
      {
        host: server.host,
        port: String(server.port),
        user: 'postgres',
        dbname: 'replication',
        replication: 'true',
        connect_timeout: '5',
        ...extra,
      },
      { env: { HOME: '/nonexistent' }, ...options, ...(signal === undefined ? {} : { signal }) },
    );
}

/** `connectTo` that counts its calls: how many connections the receiver attempted. */
export function countedConnect(
  server: FakeWalsender,
  extra: Record<string, string> = {},
): { attempts: number; connect: () => ReturnType<typeof connect> } {
  const connectOnce = connectTo(server, extra);
  const counter = {
    attempts: 0,
    connect: () => {
      counter.attempts += 1;
      return connectOnce();
    },
  };
  return counter;
}

export interface LibraryRun {
  events: ReceiveEvent[];
  /** What the iteration threw, if anything. */
  error: unknown;
  /** True when the overall time limit ended the run (the receiver hung). */
  timedOut: boolean;
}

/**
 * Runs `receiveWal` to its end: a `stopped` event, a thrown error, or `limitMs` (then aborted, and
 * `timedOut` set, so a hang is a test failure rather than a stuck suite). `onEvent` may stop the run
 * by returning 'stop' (breaks out of the loop, which closes the sink).
 */
export async function runLibrary(
  options: Partial<ReceiveWalOptions> & { connect: ReceiveWalOptions['connect']; sink: WalSink },
  settings: { limitMs?: number; onEvent?: (event: ReceiveEvent) => 'stop' | undefined } = {},
): Promise<LibraryRun> {
  const events: ReceiveEvent[] = [];
  const limit = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    limit.abort();
  }, settings.limitMs ?? 20_000);
  const signal =
    options.signal === undefined ? limit.signal : AbortSignal.any([options.signal, limit.signal]);
  let error: unknown;
  try {
    for await (const event of receiveWal({ reconnectDelayMs: 10, statusIntervalMs: 0, ...options, signal })) {
      events.push(event);
      if (settings.onEvent?.(event) === 'stop') break;
    }
  } catch (thrown) {
    error = thrown;
  } finally {
    clearTimeout(timer);
  }
  return { events, error, timedOut };
}

/**
 * `runLibrary` connected to `server` and storing into `directory` with `directorySink`, unless
 * `options` bring their own `connect` or `sink`.
 */
export function receiveInto(
  server: FakeWalsender,
  directory: string,
  options: Partial<ReceiveWalOptions> = {},
  settings: Parameters<typeof runLibrary>[1] = {},
): Promise<LibraryRun> {
  return runLibrary(
    { connect: connectTo(server), ...options, sink: options.sink ?? directorySink(directory) },
    settings,
  );
}

/** The `disconnected` events of a run: one per failed connection that the receiver retried. */
export function disconnections(run: LibraryRun): Extract<ReceiveEvent, { type: 'disconnected' }>[] {
  return run.events.filter((event) => event.type === 'disconnected');
}

/** A DirectorySink without fsync (the suite checks bytes, not durability), unless told otherwise. */
export function directorySink(directory: string, sync = false): DirectorySink {
  return new DirectorySink({ directory, sync });
}

/** Wraps a sink so that every write waits `delayMs` first (a slow disk). */
export function slowSink(inner: WalSink, delayMs: number): WalSink & { writes: number } {
  const wrapper = {
    writes: 0,
    prepare: (info: Parameters<WalSink['prepare']>[0]) => inner.prepare(info),
    resumePoint: () => inner.resumePoint(),
    hasHistoryFile: (timeline: number) => inner.hasHistoryFile(timeline),
    writeHistoryFile: (timeline: number, content: Buffer) => inner.writeHistoryFile(timeline, content),
    async write(timeline: number, startLsn: bigint, data: Buffer) {
      wrapper.writes += 1;
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      return inner.write(timeline, startLsn, data);
    },
    flush: () => inner.flush(),
    close: () => inner.close(),
    get durableLsn() {
      return inner.durableLsn;
    },
  };
  return wrapper;
}

/** A WalError with a stable code: what every failure of the receiver must be. */
export function isCodedWalError(error: unknown): error is WalError {
  return error instanceof WalError && /^WAL_ERR_[A-Z0-9_]+$/.test(error.code);
}

// ---------------------------------------------------------------------------------------------
// The oracle: stored files against the server's WAL
// ---------------------------------------------------------------------------------------------

const SEGMENT_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$/;
const HISTORY_NAME = /^([0-9A-F]{8})\.history$/;

export interface StoredSegment {
  name: string;
  timeline: number;
  segmentNumber: bigint;
  partial: boolean;
  /** For a partial: how many leading bytes are data (up to the last non-zero byte). */
  dataLength: number;
}

export interface DirectoryReport {
  segments: StoredSegment[];
  histories: number[];
  /** Problems found; an empty list means every file is right. */
  problems: string[];
}

/**
 * Checks every file of `directory` against `server.model`: names are segment or history names and
 * nothing else (no temporary file left), complete segments are the server's bytes, partial segments
 * are a prefix of them padded with zeros to the segment size, history files are the server's.
 */
export function checkDirectory(
  directory: string,
  server: FakeWalsender,
  options: { allowTemporary?: boolean } = {},
): DirectoryReport {
  const model = server.model;
  const segmentSize = model.segmentSize;
  const segmentsPerLog = 0x1_0000_0000n / BigInt(segmentSize);
  const report: DirectoryReport = { segments: [], histories: [], problems: [] };
  for (const name of readdirSync(directory).sort()) {
    const path = join(directory, name);
    const segmentMatch = SEGMENT_NAME.exec(name);
    const historyMatch = HISTORY_NAME.exec(name);
    if (segmentMatch !== null) {
      const timeline = Number.parseInt(segmentMatch[1]!, 16);
      const segmentNumber =
        BigInt(Number.parseInt(segmentMatch[2]!, 16)) * segmentsPerLog +
        BigInt(Number.parseInt(segmentMatch[3]!, 16));
      const partial = segmentMatch[4] !== undefined;
      const bytes = readFileSync(path);
      const info = model.timeline(timeline);
      let dataLength = bytes.length;
      if (info === undefined) {
        report.problems.push(`${name}: timeline ${timeline} is not one of the server's`);
      } else if (bytes.length !== segmentSize) {
        report.problems.push(`${name}: ${bytes.length} bytes, expected ${segmentSize}`);
      } else {
        const expected = info.generator.segmentBytes(segmentNumber);
        if (partial) {
          dataLength = lastNonZero(bytes) + 1;
          const differs = firstDifference(bytes, expected, dataLength);
          if (differs !== -1) report.problems.push(`${name}: byte ${differs} differs from the server's WAL`);
        } else {
          const differs = firstDifference(bytes, expected, segmentSize);
          if (differs !== -1) report.problems.push(`${name}: complete segment differs at byte ${differs}`);
        }
      }
      report.segments.push({ name, timeline, segmentNumber, partial, dataLength });
    } else if (historyMatch !== null) {
      const timeline = Number.parseInt(historyMatch[1]!, 16);
      const expected = model.historyFile(timeline);
      const content = readFileSync(path);
      if (expected === undefined || !content.equals(expected.content)) {
        report.problems.push(`${name}: not the server's history file of timeline ${timeline}`);
      }
      report.histories.push(timeline);
    } else if (!(options.allowTemporary && name.endsWith('.tmp'))) {
      report.problems.push(`${name}: unexpected file`);
    }
  }
  return report;
}

function lastNonZero(bytes: Buffer): number {
  for (let index = bytes.length - 1; index >= 0; index--) if (bytes[index] !== 0) return index;
  return -1;
}

function firstDifference(actual: Buffer, expected: Buffer, length: number): number {
  if (actual.subarray(0, length).equals(expected.subarray(0, length))) return -1;
  for (let index = 0; index < length; index++) if (actual[index] !== expected[index]) return index;
  return -1;
}

/**
 * All WAL of a ready scenario on timeline 1 is stored, and nothing else: segments 1-3 complete, 4
 * partial up to `FLUSH_LSN` and zero padded after it.
 */
export function expectAllStored(directory: string, server: FakeWalsender): void {
  const report = checkDirectory(directory, server);
  expect(report.problems).toEqual([]);
  expect(report.segments.map((segment) => segment.name)).toEqual([
    segmentName(1, 1n, MEGABYTE),
    segmentName(1, 2n, MEGABYTE),
    segmentName(1, 3n, MEGABYTE),
    segmentName(1, 4n, MEGABYTE, true),
  ]);
  const expected = server.model.timeline(1)!.generator.segmentFile(4n, { endLsn: FLUSH_LSN });
  expect(expected.subarray(report.segments.at(-1)!.dataLength).every((byte) => byte === 0)).toBe(true);
}

/** Names in `root` besides the target directory `wal`: anything there was written outside it. */
export function strayFiles(root: string): string[] {
  return readdirSync(root).filter((name) => name !== 'wal');
}

/** The name pg_receivewal gives segment `segmentNumber` (computed here, independently). */
export function segmentName(
  timeline: number,
  segmentNumber: bigint,
  segmentSize: number,
  partial = false,
): string {
  const perLog = 0x1_0000_0000n / BigInt(segmentSize);
  const hex = (value: bigint | number) => value.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(segmentNumber / perLog)}${hex(segmentNumber % perLog)}${partial ? '.partial' : ''}`;
}

// ---------------------------------------------------------------------------------------------
// Waiting and what the server recorded
// ---------------------------------------------------------------------------------------------

/**
 * Resolves once `predicate()` holds, checking every few milliseconds; rejects after `limitMs` with
 * `what` (a state the test waits for, never a timing assertion).
 */
export async function waitUntil(predicate: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const giveUpAt = Date.now() + limitMs;
  while (!predicate()) {
    if (Date.now() > giveUpAt) throw new Error(`gave up waiting for ${what} after ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The standby status updates ('r') the server recorded, in arrival order. */
export function statusUpdates(server: FakeWalsender, connection?: number) {
  return server.recorded.flatMap((entry) =>
    entry.standby?.type === 'StandbyStatusUpdate' &&
    (connection === undefined || entry.connection === connection)
      ? [{ ...entry.standby, connection: entry.connection, receivedAt: entry.receivedAt }]
      : [],
  );
}

/** The START_REPLICATION commands the server received, in arrival order. */
export function startReplications(server: FakeWalsender): string[] {
  return server.recorded.flatMap((entry) =>
    entry.message.type === 'Query' && entry.message.sql.startsWith('START_REPLICATION')
      ? [entry.message.sql]
      : [],
  );
}

/**
 * The answers of keepalive-reply's keepalive under `-s 0` without a slot: exactly one status update,
 * write = all WAL received, flush and apply 0.
 */
export function expectOneKeepaliveAnswer(answered: ReturnType<typeof statusUpdates>): void {
  expect(answered).toHaveLength(1);
  expect(answered[0]).toMatchObject({
    writeLsn: FLUSH_LSN,
    flushLsn: 0n,
    applyLsn: 0n,
    replyRequested: false,
  });
}

/** `X/X` text of an LSN, for scenario parameters. */
export function lsnText(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/**
 * A fast shutdown as the walsender's WalSndDone does it (spec §3.8): keepalive asking for a reply,
 * wait for a status update whose write position reached what was sent (not any earlier periodic one:
 * the ready scenario's `shutdown()` takes the first status it finds), CommandComplete "COPY 0" inside
 * COPY, close.
 */
export async function shutDownLikeWalSender(session: Session, sentLsn: bigint): Promise<void> {
  await session.keepalive({ replyRequested: true, walEnd: sentLsn });
  await session.waitForStandby(
    (message) => message.type === 'StandbyStatusUpdate' && message.writeLsn >= sentLsn,
  );
  await session.send({ type: 'CommandComplete', tag: 'COPY 0' });
  session.close();
}

/** A script: connection 1 is served with `hooks(session)`, every later one as the scenario would. */
export function onFirstConnection(hooks: (session: Session) => ServeHooks): Script {
  return (session) => session.serveDefault(session.connectionIndex === 1 ? hooks(session) : {});
}

/**
 * A script: connection 1 streams up to `stopAt` and the server then shuts down like a walsender
 * (COPY 0 + close, spec §3.8); later connections are served normally.
 */
export function shutDownFirstConnectionAt(stopAt: bigint): Script {
  return onFirstConnection((session) => ({
    async onStream(request) {
      await session.sendWal(request.startLsn, stopAt, { timeline: request.timeline });
      await shutDownLikeWalSender(session, stopAt);
    },
  }));
}
