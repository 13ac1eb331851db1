/**
 * Helpers for the end-to-end acceptance suite of `wal receive`:
 * spawning the built binary and PostgreSQL's own `pg_receivewal`, collecting their output, killing
 * them, comparing directories byte for byte, writing WAL on a throwaway server, and waiting for
 * states that arrive asynchronously.
 *
 * The oracles here are deliberately independent of the product: LSN text and WAL file names are
 * parsed with a few lines of their own (not @wal/protocol), SQL goes through node-postgres
 * (`cluster.sql`), decompression through node:zlib, lz4-napi and zstd(1).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import {
  type Cluster,
  type ClusterOptions,
  clientTool,
  startCluster,
  startStandby,
  testedVersions,
} from '@wal/pg-cluster';
import { decompressFrameSync } from 'lz4-napi';
import pg from 'pg';
import { afterAll, afterEach, beforeAll } from 'vitest';

/** The built CLI (bin/run.js over dist/): the test command builds it before vitest starts. */
export const CLI_BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

/** The application_name `wal receive` connects with unless the connection string sets one. */
export const WAL_RECEIVE_APPLICATION_NAME = 'wal receive';

export const MEGABYTE = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Every process this suite started and has not seen exit; `killAll()` ends them after a failure. */
const running = new Set<RunningProcess>();

export class RunningProcess {
  readonly child: ChildProcess;
  readonly description: string;
  readonly result: Promise<RunResult>;
  #stdout = '';
  #stderr = '';
  #exited = false;

  /** `input`: what the process reads on stdin (a typed password), then end of file; none: no stdin. */
  constructor(
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    description: string,
    input?: string,
    identity: ProcessIdentity = {},
  ) {
    this.description = description;
    this.child = spawn(command, args, {
      env,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      ...identity,
    });
    if (input !== undefined) this.child.stdin?.end(input);
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.#stdout += chunk.toString();
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    running.add(this);
    this.result = new Promise<RunResult>((resolve, reject) => {
      this.child.on('error', (error) => {
        this.#exited = true;
        running.delete(this);
        reject(error);
      });
      this.child.on('close', (code, signal) => {
        this.#exited = true;
        running.delete(this);
        resolve({ code, signal, stdout: this.#stdout, stderr: this.#stderr });
      });
    });
    // A test that never awaits `result` must not cause an unhandled rejection.
    this.result.catch(() => undefined);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** Sends a signal if the process still runs. */
  signal(signal: NodeJS.Signals): void {
    if (!this.#exited) this.child.kill(signal);
  }

  /** SIGKILL and wait for the exit. */
  async killHard(): Promise<RunResult> {
    this.signal('SIGKILL');
    return await this.result;
  }

  /**
   * The result, or, after `timeoutMs`, SIGKILL and an error that carries what the process wrote:
   * a hanging receiver must fail its test with its own output, not with vitest's timeout.
   */
  async wait(timeoutMs: number): Promise<RunResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.signal('SIGCONT');
        this.signal('SIGKILL');
        reject(
          new Error(
            `${this.description} did not exit within ${timeoutMs / 1000} s; killed.\n` +
              `--- stderr ---\n${this.#stderr}\n--- stdout ---\n${this.#stdout}`,
          ),
        );
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.result, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves once stderr matches `pattern`; rejects if the process exits first or after `timeoutMs`. */
  async waitForStderr(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    await waitUntil(
      () => {
        if (pattern.test(this.#stderr)) return true;
        if (this.#exited) {
          throw new Error(
            `${this.description} exited before its stderr matched ${pattern}:\n${this.#stderr}`,
          );
        }
        return false;
      },
      { timeoutMs, description: `${this.description}: stderr matching ${pattern}\n${this.#stderr}` },
    );
  }
}

/** Kills every process the suite started that still runs (afterEach/afterAll). */
export async function killAll(): Promise<void> {
  const processes = [...running];
  for (const process of processes) {
    process.signal('SIGCONT');
    process.signal('SIGKILL');
  }
  await Promise.all(processes.map((process) => process.result.catch(() => undefined)));
}

/**
 * The environment of every receiver: PG* variables of the test run removed, PGHOST/PGPORT/PGUSER
 * pointing at `cluster` over TCP, as the TAP test does; `extra` last (PGPASSWORD, ...).
 */
export function clusterEnvironment(cluster: Cluster, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  // A ~/.pgpass of the machine must not answer for a test.
  env.PGPASSFILE = '/nonexistent/wal-e2e-pgpass';
  return {
    ...env,
    PGHOST: cluster.host,
    PGPORT: String(cluster.port),
    PGUSER: cluster.superuser,
    ...extra,
  };
}

/** The user a process runs as (spawn's uid/gid); none: this process's user. */
export interface ProcessIdentity {
  readonly uid?: number;
  readonly gid?: number;
}

export interface StartOptions {
  readonly env?: Record<string, string>;
  /** The node binary that runs the CLI: another Node.js line than the test's (zstd needs 22.15+). */
  readonly node?: string;
  readonly identity?: ProcessIdentity;
}

/** Starts `node bin/run.js receive <args>` against `cluster`. */
export function startReceive(
  cluster: Cluster,
  args: readonly string[],
  options: StartOptions = {},
): RunningProcess {
  return new RunningProcess(
    options.node ?? process.execPath,
    [CLI_BIN, 'receive', ...args],
    clusterEnvironment(cluster, options.env),
    `wal receive ${args.join(' ')}`,
    undefined,
    options.identity,
  );
}

/** Runs `wal receive` to completion (killed after `timeoutMs`). */
export async function runReceive(
  cluster: Cluster,
  args: readonly string[],
  options: StartOptions & { timeoutMs?: number } = {},
): Promise<RunResult> {
  return await startReceive(cluster, args, options).wait(options.timeoutMs ?? 45_000);
}

/** The path of PostgreSQL's pg_receivewal (Debian's 15 by default), or undefined when absent. */
export function pgReceivewalPath(): string | undefined {
  return clientTool('pg_receivewal');
}

/**
 * Whether the comparison tests against PostgreSQL's own client tools can run. Missing tools skip
 * them (with the reason printed), unless WAL_REQUIRE_CLIENT_TOOLS=1, where the tests run and fail.
 */
export function clientToolsSkipReason(): string | undefined {
  if (pgReceivewalPath() !== undefined) return undefined;
  if (process.env.WAL_REQUIRE_CLIENT_TOOLS === '1') return undefined;
  return (
    'PostgreSQL client tools (pg_receivewal) not found: install Debian postgresql-15 or set ' +
    'WAL_PG_CLIENT_BIN; the comparison tests with pg_receivewal are skipped'
  );
}

/**
 * Whether a comparison with PostgreSQL 15's pg_receivewal runs here: it needs the client tools and
 * PostgreSQL 15 among the tested versions (pg_receivewal 15 refuses newer servers). Says why not.
 */
export function pgReceivewalComparison(what: string): { version: 15; runnable: boolean } {
  const version = 15;
  const skipReason = clientToolsSkipReason();
  const runnable = skipReason === undefined && (testedVersions() as number[]).includes(version);
  if (skipReason !== undefined) console.warn(`[e2e] ${skipReason}`);
  else if (!runnable)
    console.warn(`[e2e] PostgreSQL ${version} is not in WAL_TEST_PG_VERSIONS: ${what} skipped`);
  return { version, runnable };
}

/** Starts PostgreSQL's `pg_receivewal <args>` against `cluster`. */
export function startPgReceivewal(
  cluster: Cluster,
  args: readonly string[],
  options: StartOptions = {},
): RunningProcess {
  const path = pgReceivewalPath();
  if (path === undefined) {
    throw new Error(
      'pg_receivewal is missing (WAL_REQUIRE_CLIENT_TOOLS=1): install Debian postgresql-15 or set WAL_PG_CLIENT_BIN.',
    );
  }
  return new RunningProcess(
    path,
    args,
    clusterEnvironment(cluster, options.env),
    `pg_receivewal ${args.join(' ')}`,
    undefined,
    options.identity,
  );
}

export async function runPgReceivewal(
  cluster: Cluster,
  args: readonly string[],
  options: StartOptions & { timeoutMs?: number } = {},
): Promise<RunResult> {
  return await startPgReceivewal(cluster, args, options).wait(options.timeoutMs ?? 45_000);
}

/** A message for `expect(...)` that shows what a process said. */
export function describeRun(result: RunResult): string {
  return `exit ${result.code ?? result.signal}\n--- stderr ---\n${result.stderr}`;
}

// ---------------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------------

export const sleep = (milliseconds: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, milliseconds));

/**
 * Polls `condition` until it returns true; throws with `description` after `timeoutMs`. A wait for
 * a state, not an assertion on how long something took.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; description: string },
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out after ${(options.timeoutMs ?? 30_000) / 1000} s waiting for ${options.description}`,
      );
    }
    await sleep(options.intervalMs ?? 50);
  }
}

/** Resolves with the first name in `directory` that matches `pattern`. */
export async function waitForFile(directory: string, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  let found: string | undefined;
  await waitUntil(
    () => {
      found = readdirSync(directory).find((name) => pattern.test(name));
      return found !== undefined;
    },
    {
      timeoutMs,
      description: `a file matching ${pattern} in ${directory} (has: ${readdirSync(directory).join(', ')})`,
    },
  );
  return found!;
}

// ---------------------------------------------------------------------------------------------
// LSNs and WAL file names (own implementations: an oracle independent of @wal/protocol)
// ---------------------------------------------------------------------------------------------

export function lsnFromText(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (match === null) throw new Error(`not an LSN: "${text}"`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

export function lsnToText(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** `%08X%08X%08X` of timeline, segment / segments-per-4GiB, segment % segments-per-4GiB. */
export function walFileNameOf(timeline: number, lsn: bigint, segmentSize: number): string {
  const segment = lsn / BigInt(segmentSize);
  const perId = 0x100000000n / BigInt(segmentSize);
  const hex = (value: bigint | number): string => value.toString(16).toUpperCase().padStart(8, '0');
  return `${hex(timeline)}${hex(segment / perId)}${hex(segment % perId)}`;
}

export function segmentStartOf(lsn: bigint, segmentSize: number): bigint {
  return lsn - (lsn % BigInt(segmentSize));
}

export function isCompleteSegmentName(name: string): boolean {
  return /^[0-9A-F]{24}$/.test(name);
}

// ---------------------------------------------------------------------------------------------
// SQL and WAL generation
// ---------------------------------------------------------------------------------------------

export async function scalar(cluster: Cluster, sql: string): Promise<string | null> {
  const [row] = await cluster.sql(sql);
  const value = row === undefined ? undefined : Object.values(row)[0];
  return value === undefined || value === null ? null : String(value);
}

export async function insertLsn(cluster: Cluster): Promise<bigint> {
  return lsnFromText((await scalar(cluster, 'SELECT pg_current_wal_insert_lsn()'))!);
}

export async function flushLsn(cluster: Cluster): Promise<bigint> {
  return lsnFromText((await scalar(cluster, 'SELECT pg_current_wal_flush_lsn()'))!);
}

/** Until the walsender named `applicationName` in pg_stat_replication reports `target` written. */
export async function waitForWritten(
  cluster: Cluster,
  applicationName: string,
  target: bigint,
  description = `the write position of ${applicationName} at ${lsnToText(target)}`,
): Promise<void> {
  await waitUntil(
    async () => {
      const written = await scalar(
        cluster,
        `SELECT write_lsn::text FROM pg_stat_replication WHERE application_name = '${applicationName}'`,
      );
      return written !== null && lsnFromText(written) >= target;
    },
    { description },
  );
}

/** pg_switch_wal(); returns the LSN of the switch record's end (the next segment's start when it wrote one). */
export async function switchWal(cluster: Cluster): Promise<bigint> {
  return lsnFromText((await scalar(cluster, 'SELECT pg_switch_wal()'))!);
}

export async function createTable(cluster: Cluster, table: string): Promise<void> {
  await cluster.sql(`CREATE TABLE IF NOT EXISTS ${table} (id integer, payload text)`);
}

/** Roughly `bytes` of WAL: rows of ~500 bytes of incompressible-enough text. */
export async function generateWal(cluster: Cluster, table: string, bytes: number): Promise<void> {
  const rows = Math.max(1, Math.ceil(bytes / 560));
  await cluster.sql(
    `INSERT INTO ${table} SELECT g, md5(g::text) || repeat(md5(random()::text), 14) FROM generate_series(1, ${rows}) g`,
  );
}

/** Writes WAL until the insert position is past `target`. */
export async function generateWalPast(cluster: Cluster, table: string, target: bigint): Promise<void> {
  while ((await insertLsn(cluster)) <= target) await generateWal(cluster, table, 256 * 1024);
  // The walsender sends only flushed WAL; a switch flushes everything inserted so far.
  await cluster.sql('SELECT pg_current_wal_flush_lsn()');
}

/** A deterministic pseudo-random generator (mulberry32), so a failing run can be repeated. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Directories and files
// ---------------------------------------------------------------------------------------------

/** A fresh, empty 0700 directory under the system temporary directory. */
export function temporaryDirectory(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `wal-e2e-${prefix}-`));
}

export function removeDirectory(directory: string | undefined): void {
  if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
}

export function listFiles(directory: string): string[] {
  return readdirSync(directory).sort();
}

export function matching(directory: string, pattern: RegExp): string[] {
  return listFiles(directory).filter((name) => pattern.test(name));
}

/** Describes where two buffers differ first, for assertion messages. */
function firstDifference(left: Buffer, right: Buffer): string {
  const length = Math.min(left.length, right.length);
  for (let offset = 0; offset < length; offset++) {
    if (left[offset] !== right[offset]) {
      return `first difference at byte ${offset} (0x${offset.toString(16)}): ${left[offset]} vs ${right[offset]}`;
    }
  }
  return `sizes ${left.length} and ${right.length}, equal up to ${length}`;
}

/**
 * Names present in only one of two directories, and files whose contents (as `read` gives them)
 * differ, each described as `<name> <differs>: <where>`.
 */
function compareDirectoryContents(
  left: string,
  right: string,
  read: (path: string) => Buffer,
  differs: string,
): string[] {
  const differences: string[] = [];
  const leftNames = listFiles(left);
  const rightNames = listFiles(right);
  for (const name of leftNames) if (!rightNames.includes(name)) differences.push(`only in ${left}: ${name}`);
  for (const name of rightNames) if (!leftNames.includes(name)) differences.push(`only in ${right}: ${name}`);
  for (const name of leftNames) {
    if (!rightNames.includes(name)) continue;
    const a = read(join(left, name));
    const b = read(join(right, name));
    if (!a.equals(b)) differences.push(`${name} ${differs}: ${firstDifference(a, b)}`);
  }
  return differences;
}

/**
 * Differences between two directories: names present in only one, and files whose bytes differ.
 * Empty when they hold the same names with the same contents.
 */
export function compareDirectories(left: string, right: string): string[] {
  return compareDirectoryContents(left, right, readFileSync, 'differs');
}

/** A file of a receiver's directory and the pg_wal segment it holds (`segment` without suffixes). */
interface SegmentFile {
  readonly name: string;
  readonly segment: string;
}

/**
 * Compares the contents (as `read` gives them) of each file with the server's pg_wal file of its
 * segment. A segment the server no longer has counts as a difference.
 */
function compareSegmentsWithPgWal(
  directory: string,
  pgWalDir: string,
  files: readonly SegmentFile[],
  read: (path: string) => Buffer,
): { compared: string[]; differences: string[] } {
  const compared: string[] = [];
  const differences: string[] = [];
  for (const { name, segment } of files) {
    let server: Buffer;
    try {
      server = readFileSync(join(pgWalDir, segment));
    } catch (error) {
      differences.push(`${segment}: not in the server's pg_wal (${(error as NodeJS.ErrnoException).code})`);
      continue;
    }
    compared.push(segment);
    const ours = read(join(directory, name));
    if (!ours.equals(server))
      differences.push(`${name} differs from pg_wal: ${firstDifference(ours, server)}`);
  }
  return { compared, differences };
}

/**
 * Compares every complete segment (24 hex digits, uncompressed) in `directory` with the file of
 * the same name in the server's pg_wal. Returns the names compared and the differences; a segment
 * the server no longer has counts as a difference, so callers keep WAL (wal_keep_size).
 */
export function compareWithPgWal(
  directory: string,
  pgWalDir: string,
  names: readonly string[] = listFiles(directory).filter(isCompleteSegmentName),
): { compared: string[]; differences: string[] } {
  const files = names.map((name) => ({ name, segment: name }));
  return compareSegmentsWithPgWal(directory, pgWalDir, files, readFileSync);
}

/**
 * Checks the contents of a `.partial` (uncompressed: zero-padded to the segment size; or the
 * decompressed bytes of a compressed one) against the server's file of the same segment: bytes up
 * to the last non-zero byte equal pg_wal's, and that end lies at or after `atLeast` (the offset
 * the run had to reach). Returns the differences (empty when it holds).
 */
export function comparePartialWithPgWal(contents: Buffer, serverPath: string, atLeast: number): string[] {
  const server = readFileSync(serverPath);
  // WAL itself has zero bytes (alignment padding, page remainders): everything before `atLeast`
  // counts as data; after it, data ends at the last non-zero byte.
  let end = contents.length;
  while (end > atLeast && contents[end - 1] === 0) end--;
  const differences: string[] = [];
  if (contents.length < atLeast)
    differences.push(`data ends at ${contents.length}, expected at least ${atLeast}`);
  const prefix = contents.subarray(0, end);
  if (!prefix.equals(server.subarray(0, end))) {
    differences.push(
      `received bytes differ from pg_wal: ${firstDifference(prefix, server.subarray(0, end))}`,
    );
  }
  return differences;
}

/**
 * Reads the .partial `name` in `directory` (decompressed by its suffix) and compares it with the
 * server's file of its segment up to `endLsn`'s offset in that segment (comparePartialWithPgWal,
 * 1 MB segments as in every suite). Returns the length read and the differences.
 */
export function partialAgainstPgWal(
  directory: string,
  name: string,
  pgWalDir: string,
  endLsn: bigint,
): { length: number; differences: string[] } {
  const contents = walFileContents(join(directory, name));
  const atLeast = Number(endLsn % BigInt(MEGABYTE));
  const serverPath = join(pgWalDir, name.slice(0, 24));
  return { length: contents.length, differences: comparePartialWithPgWal(contents, serverPath, atLeast) };
}

/**
 * Like compareDirectories, but compares the decompressed contents of .gz/.lz4 files (compressed
 * bytes depend on how the writes were cut and flushed; the WAL inside must not).
 */
export function compareDirectoriesDecompressed(left: string, right: string): string[] {
  return compareDirectoryContents(left, right, walFileContents, 'differs after decompression');
}

/** Every completed segment (any compression) decompresses to exactly the server's pg_wal file. */
export function compareDecompressedWithPgWal(
  directory: string,
  pgWalDir: string,
): { compared: string[]; differences: string[] } {
  const files = listFiles(directory)
    .map((name) => ({ name, segment: name.replace(/\.(gz|lz4|zst)$/, '') }))
    .filter(({ segment }) => isCompleteSegmentName(segment));
  return compareSegmentsWithPgWal(directory, pgWalDir, files, walFileContents);
}

export function fileSize(path: string): number {
  return statSync(path).size;
}

export function fileMode(path: string): number {
  return statSync(path).mode & 0o777;
}

// ---------------------------------------------------------------------------------------------
// Decompression (independent of @wal/sink-fs)
// ---------------------------------------------------------------------------------------------

export function gunzip(path: string): Buffer {
  return gunzipSync(readFileSync(path));
}

export function unlz4(path: string): Buffer {
  return Buffer.from(decompressFrameSync(readFileSync(path)));
}

/** zstd(1) itself, not node:zlib: the test runs on Node.js 20 too, and the program is the reference. */
export function unzstd(path: string): Buffer {
  return execFileSync('zstd', ['--decompress', '--stdout', '--quiet', path], { maxBuffer: 64 * MEGABYTE });
}

/** The uncompressed contents of a WAL file by its name's suffix (.gz, .lz4, .zst or none). */
export function walFileContents(path: string): Buffer {
  if (/\.gz(\.partial)?$/.test(path)) return gunzip(path);
  if (/\.lz4(\.partial)?$/.test(path)) return unlz4(path);
  if (/\.zst(\.partial)?$/.test(path)) return unzstd(path);
  return readFileSync(path);
}

// ---------------------------------------------------------------------------------------------
// node-postgres, for a second session beside cluster.sql (a COMMIT that blocks on SyncRep)
// ---------------------------------------------------------------------------------------------

export type SqlSession = pg.Client;

/** A separate superuser session over the cluster's Unix socket. */
export async function openSession(cluster: Cluster): Promise<SqlSession> {
  const client = new pg.Client({
    host: cluster.socketDir,
    port: cluster.port,
    user: cluster.superuser,
    database: 'postgres',
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

// ---------------------------------------------------------------------------------------------
// Version choice
// ---------------------------------------------------------------------------------------------

/**
 * The server version a single-version suite runs against: `preferred` when WAL_TEST_PG_VERSIONS
 * includes it (the suites spread over 14, 16 and 18 so that together they cover the matrix), else
 * the newest tested version.
 */
export function suiteVersion(preferred: 14 | 15 | 16 | 17 | 18): 14 | 15 | 16 | 17 | 18 {
  const versions = testedVersions();
  if (versions.includes(preferred)) return preferred;
  return versions[versions.length - 1]!;
}

// ---------------------------------------------------------------------------------------------
// A suite's server and directories
// ---------------------------------------------------------------------------------------------

/** The server keeps every segment of a suite, so that pg_wal can serve as the oracle. */
export const KEEP_WAL_SETTINGS: Readonly<Record<string, string>> = { wal_keep_size: '256MB' };

export interface SuiteServerOptions extends Omit<ClusterOptions, 'version' | 'segmentSizeMb'> {
  readonly version: 14 | 15 | 16 | 17 | 18;
  /** Prefix of the suite's temporary directory (`wal-e2e-<prefix>-…`). */
  readonly prefix: string;
  /** A table created once the server runs, for `generateWal`. */
  readonly table?: string;
  /** Also start a standby of the server (with the same settings), as `standby`. */
  readonly standby?: boolean;
}

export interface SuiteServer {
  /** The server of the suite (from beforeAll on). */
  readonly cluster: Cluster;
  /** Its standby, when the options asked for one. */
  readonly standby: Cluster;
  /** The suite's temporary directory, removed after the suite. */
  readonly base: string;
  /** Makes `name` under `base` as a new, empty 0700 directory and returns its path. */
  directory(name: string): string;
}

/**
 * Registers the hooks every e2e suite needs, inside the `describe` that calls it: beforeAll starts
 * a server with 1 MB segments that keeps its WAL (`settings` default to KEEP_WAL_SETTINGS), makes
 * the suite's temporary directory, creates `table` and starts a standby when asked; afterEach kills
 * the processes a test left running; afterAll stops the servers and removes the directory.
 */
export function useSuiteServer(options: SuiteServerOptions): SuiteServer {
  const { prefix, table, standby: withStandby, settings = KEEP_WAL_SETTINGS, ...clusterOptions } = options;
  let cluster: Cluster | undefined;
  let standby: Cluster | undefined;
  let base: string | undefined;
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the suite's ${what} is not started (used outside a test?)`);
    return value;
  };

  beforeAll(async () => {
    cluster = await startCluster({ ...clusterOptions, segmentSizeMb: 1, settings: { ...settings } });
    base = temporaryDirectory(prefix);
    if (table !== undefined) await createTable(cluster, table);
    if (withStandby === true) standby = await startStandby(cluster, { settings: { ...settings } });
  });

  afterEach(async () => {
    await killAll();
  });

  afterAll(async () => {
    await standby?.stop();
    await cluster?.stop();
    removeDirectory(base);
  });

  return {
    get cluster() {
      return started(cluster, 'server');
    },
    get standby() {
      return started(standby, 'standby');
    },
    get base() {
      return started(base, 'directory');
    },
    directory(name: string): string {
      const path = join(started(base, 'directory'), name);
      mkdirSync(path, { mode: 0o700 });
      return path;
    },
  };
}

export interface StreamingReceiver {
  readonly receiver: RunningProcess;
  /** The name of the .partial it opened. */
  readonly partial: string;
}

/**
 * Starts `wal receive --directory <directory> <args>`, waits until it streams, writes `walBytes`
 * of WAL into `table` (a segment file is opened with the first WAL that arrives) and waits for the
 * .partial it opens.
 */
export async function startStreamingReceiver(
  cluster: Cluster,
  directory: string,
  args: readonly string[],
  wal: { readonly table: string; readonly bytes?: number },
): Promise<StreamingReceiver> {
  const receiver = startReceive(cluster, ['--directory', directory, ...args]);
  await receiver.waitForStderr(/starting log streaming at/);
  await generateWal(cluster, wal.table, wal.bytes ?? 1024);
  const partial = await waitForFile(directory, /\.partial$/);
  return { receiver, partial };
}

// ---------------------------------------------------------------------------------------------
// System calls (fsync is not visible in a file's contents; strace shows it)
// ---------------------------------------------------------------------------------------------

const STRACE_CANDIDATES = ['/usr/bin/strace', '/bin/strace'];

/** strace's path when it is installed, else undefined (the tests that need it are skipped). */
export function stracePath(): string | undefined {
  return STRACE_CANDIDATES.find((path) => {
    try {
      return statSync(path).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * Attaches strace to every thread of `pid` (libuv runs fs calls on its thread pool), logging
 * `syscalls` with file descriptors resolved to paths (-y) into `outputPath`. Resolves once attached.
 */
export async function traceSystemCalls(
  pid: number,
  syscalls: readonly string[],
  outputPath: string,
): Promise<RunningProcess> {
  const strace = stracePath();
  if (strace === undefined) throw new Error('strace is not installed');
  const tracer = new RunningProcess(
    strace,
    ['-f', '-y', '-p', String(pid), '-e', `trace=${syscalls.join(',')}`, '-o', outputPath],
    { ...process.env },
    `strace -p ${pid}`,
  );
  await tracer.waitForStderr(/attached/, 10_000);
  // strace reports each thread as it attaches; give the rest a moment.
  await sleep(200);
  return tracer;
}
