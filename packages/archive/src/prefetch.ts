import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { lstat, mkdir, readdir, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseWalFileName, walFileName } from '@wal/protocol';
import { errnoCode } from './errors.js';
import { type RestoreResult, restoreFromArchive } from './restore.js';
import { type ArchiveSource, isObjectStoreLocation, withArchive } from './source.js';

const LOCK_FILE = 'prefetch.lock';

/**
 * The default spool directory of one data directory restoring from one archive: under the
 * system's temporary directory, so never inside the data directory, where pg_rewind and base
 * backups would copy it, and never in the archive, which may be read-only or shared.
 */
export function defaultSpoolDirectory(archive: string, dataDirectory: string): string {
  const where = isObjectStoreLocation(archive) ? archive : resolve(archive);
  return join(tmpdir(), `wal-restore-${fnv1a(`${where}\0${resolve(dataDirectory)}`)}`);
}

/** A short stable hash for a directory name (FNV-1a, 32 bits): node:crypto costs start-up time. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/**
 * Takes `wanted` from the spool if a prefetcher left it there: checked like an archive file (page
 * header, size), copied to `target`, and removed from the spool. Undefined when the spool does not
 * have it, or has a damaged copy (removed; the caller reads the archive instead).
 */
export async function takeFromSpool(
  spool: string,
  wanted: string,
  target: string,
  sync: boolean,
  signal?: AbortSignal,
): Promise<RestoreResult | undefined> {
  if (!(await isPrivateDirectory(spool))) return undefined;
  try {
    const result = await restoreFromArchive({ archive: spool, wanted, target, partial: false, sync, signal });
    if (result.status === 'not-found') return undefined;
    await unlink(join(spool, wanted)).catch(() => {});
    return result;
  } catch {
    if (signal?.aborted) return undefined;
    await unlink(join(spool, wanted)).catch(() => {});
    return undefined;
  }
}

/**
 * The spool must be a directory of this user that nobody else can write: under a shared
 * temporary directory another user could otherwise plant files for the server to replay.
 */
async function isPrivateDirectory(path: string): Promise<boolean> {
  try {
    const status = await lstat(path);
    const owner = process.getuid?.();
    return (
      status.isDirectory() && (owner === undefined || status.uid === owner) && (status.mode & 0o022) === 0
    );
  } catch {
    return false;
  }
}

/** True when a live prefetcher holds the spool's lock. */
export function prefetcherRunning(spool: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(spool, LOCK_FILE), 'utf8'));
  } catch {
    return false;
  }
  return Number.isInteger(pid) && pid > 0 && processAlive(pid);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errnoCode(error) === 'EPERM';
  }
}

export interface PrefetchOptions {
  /** The archive: a directory path, an `s3://BUCKET/PREFIX` URL, or a source opened before. */
  archive: string | ArchiveSource;
  spool: string;
  /** The segment just restored: prefetching starts after it, on its timeline. */
  after: string;
  segmentSize: number;
  /**
   * At most this many segments wait in the spool or are being fetched, all at once (so at most
   * count × segmentSize bytes, and count reads in parallel).
   */
  count: number;
  /** Stop after waiting this long with a full spool that nobody consumes (default 2000 ms). */
  idleMs?: number;
}

/**
 * Fetches the segments after `after` into the spool while it has room, up to `count` at once, one
 * prefetcher per spool (a lock file with its pid). It stops at the first segment the archive does
 * not have (the end of the archive, or a `.partial`, which is never prefetched), at any failure
 * (the foreground call then meets it itself and reports it), and when the spool stays full.
 * Files of earlier prefetchers that nobody asked for are removed first. History files and "not
 * found" answers are never kept.
 */
export async function runPrefetcher(options: PrefetchOptions): Promise<void> {
  await mkdir(options.spool, { recursive: true, mode: 0o700 }).catch(() => {});
  if (!(await isPrivateDirectory(options.spool)) || !takeLock(options.spool)) return;
  try {
    const parsed = parseWalFileName(options.after, options.segmentSize);
    if (parsed === undefined) return;
    const window = Array.from({ length: options.count }, (_, index) =>
      walFileName(parsed.timeline, parsed.segmentNumber + BigInt(index + 1), options.segmentSize),
    );
    await removeOutside(options.spool, window);
    await withArchive(options.archive, (source) =>
      fetchAhead(source, options, parsed.timeline, parsed.segmentNumber + 1n),
    );
  } catch {
    // A prefetcher only saves time: the foreground call reads the archive itself and reports.
  } finally {
    await unlink(join(options.spool, LOCK_FILE)).catch(() => {});
  }
}

/** Keeps up to `count` segments fetched or being fetched, in order from `first`. */
async function fetchAhead(
  source: ArchiveSource,
  options: PrefetchOptions,
  timeline: number,
  first: bigint,
): Promise<void> {
  const fetching = new Set<Promise<void>>();
  let next = first;
  let stopped = false;
  let idleSince = Date.now();
  const fetchOne = async (name: string) => {
    try {
      const target = join(options.spool, name);
      const result = await restoreFromArchive({
        archive: source,
        wanted: name,
        target,
        partial: false,
        sync: false,
      });
      if (result.status === 'not-found') stopped = true;
    } catch {
      stopped = true;
    }
  };
  for (;;) {
    if (!stopped && (await waitingInSpool(options.spool)) + fetching.size < options.count) {
      const task = fetchOne(walFileName(timeline, next, options.segmentSize)).finally(() =>
        fetching.delete(task),
      );
      fetching.add(task);
      next += 1n;
      continue;
    }
    if (fetching.size > 0) {
      await Promise.race(fetching);
      idleSince = Date.now();
    } else if (stopped || Date.now() - idleSince > (options.idleMs ?? 2000)) {
      return;
    } else {
      await sleep(20);
    }
  }
}

async function waitingInSpool(spool: string): Promise<number> {
  return (await readdir(spool)).filter((name) => /^[0-9A-F]{24}$/.test(name)).length;
}

function takeLock(spool: string): boolean {
  const path = join(spool, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const descriptor = openSync(path, 'wx', 0o600);
      writeSync(descriptor, String(process.pid));
      closeSync(descriptor);
      return true;
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST' || prefetcherRunning(spool)) return false;
      // The lock of a prefetcher that died.
      try {
        unlinkSync(path);
      } catch {
        return false;
      }
    }
  }
  return false;
}

async function removeOutside(spool: string, window: readonly string[]): Promise<void> {
  const keep = new Set([...window, LOCK_FILE]);
  for (const name of await readdir(spool)) {
    if (!keep.has(name)) await unlink(join(spool, name)).catch(() => {});
  }
}
