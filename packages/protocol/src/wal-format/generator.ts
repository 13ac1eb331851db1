import {
  LONG_PAGE_HEADER_SIZE,
  PageInfo,
  RECORD_CRC_OFFSET,
  RECORD_HEADER_SIZE,
  RM_XLOG_ID,
  SHORT_PAGE_HEADER_SIZE,
  WAL_PAGE_SIZE,
  XLOG_NOOP,
} from './constants.js';
import { CRC32C_INITIAL, finishCrc32c, updateCrc32c } from './crc32c.js';
import { WalFormatError } from './errors.js';
import { pageMagicForVersion } from './page-header.js';
import { encodeMainDataHeader, mainDataRecordLength, maximumAlign } from './record.js';

/**
 * A deterministic, seekable source of valid WAL: `XLOG NOOP` records of pseudo-random sizes laid out
 * exactly as PostgreSQL lays them out (page headers, long header per segment, MAXALIGNed records,
 * records and even record headers crossing page and segment boundaries with
 * `XLP_FIRST_IS_CONTRECORD`/`xlp_rem_len`, the `xl_prev` chain and CRC-32C), so pg_waldump reads it.
 *
 * The bytes at an LSN are a function of the options only, never of the range asked for: the fake
 * walsender sends a range, a test regenerates the same range and compares.
 *
 * Speed: a segment is generated whole, once, into a fresh (unzeroed) buffer and cached (the two most recent
 * are kept). Record payloads are slices of a seed-derived pool followed by the record's own LSN, so the
 * CRC state after the pool part depends on the payload length only and is cached: each record costs a
 * memcpy plus a CRC over 28 bytes. Where the record stream stands at each segment start is remembered,
 * so a later segment is reached by walking sizes only, without producing bytes.
 */
export interface WalGeneratorOptions {
  /** Any 32-bit integer; different seeds give different record sizes and payloads. */
  seed: number;
  /** Bytes per segment: a power of two from 1 MiB to 1 GiB. */
  segmentSize: number;
  /** `xlp_tli` of the pages this generator writes. */
  timeline: number;
  /** `xlp_sysid` of every long page header. */
  systemId: bigint;
  /** `xlp_magic`; give this or `serverVersion`. */
  pageMagic?: number;
  /** Major (14..19) or `server_version_num` (150008): picks `xlp_magic` when `pageMagic` is absent. */
  serverVersion?: number;
  /**
   * Where this WAL begins; must be a segment start. Default: segment 1 (`segmentSize`), where a fresh
   * initdb starts. Reading before it is an error.
   */
  originLsn?: bigint;
  /**
   * Continue another generator's WAL as a new timeline: bytes before `switchLsn` are the parent's
   * (including the header of the page holding `switchLsn`, so that page keeps the parent's `xlp_tli`,
   * as on a real server), records from `switchLsn` on are this generator's. `switchLsn` must be where a
   * parent record starts; {@link WalGenerator.recordStartAtOrAfter} finds one.
   */
  parent?: { generator: WalGenerator; switchLsn: bigint };
  /**
   * Set `XLP_BKP_REMOVABLE` on every page as servers up to 18 do outside base backups (observed
   * `xlp_info = 6` on a first page). Default: true for majors before 19, where the bit no longer exists.
   */
  backupRemovable?: boolean;
}

/** One record's place in the stream. */
export interface GeneratedRecord {
  lsn: bigint;
  totalLength: number;
}

/**
 * LSNs inside the generator are plain numbers (exact up to 2^53, 8 PiB of WAL): BigInt arithmetic per
 * record would cost more than the rest of the record's work.
 */
interface PendingRecord {
  index: number;
  start: number;
  previous: number;
  totalLength: number;
  written: number;
}

/** Where the record stream stands at a position: what comes next and what is half written. */
interface StreamState {
  nextIndex: number;
  /** Start of the last record begun before this position (`xl_prev` of the next one). */
  previous: number;
  pending: PendingRecord | undefined;
}

const TWO_TO_32 = 4294967296;

function writeUint64(target: Buffer, value: number, offset: number): void {
  const low = value % TWO_TO_32;
  target.writeUInt32LE(low, offset);
  target.writeUInt32LE((value - low) / TWO_TO_32, offset + 4);
}

const MINIMUM_DATA_LENGTH = 8;
const LARGEST_DATA_LENGTH = 2008 + 312 * 64;
const POOL_SPREAD = 4096;
const CACHED_SEGMENTS = 2;

function mix32(value: number): number {
  let hash = value | 0;
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

function isValidSegmentSize(size: number): boolean {
  return (
    Number.isInteger(size) && size >= 1024 * 1024 && size <= 1024 * 1024 * 1024 && (size & (size - 1)) === 0
  );
}

function checkOptions(options: WalGeneratorOptions): void {
  if (!Number.isInteger(options.seed)) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_OPTIONS',
      `WAL generator seed must be an integer, got ${options.seed}.`,
    );
  }
  if (!isValidSegmentSize(options.segmentSize)) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_OPTIONS',
      `WAL segment size must be a power of two between 1 MiB and 1 GiB, got ${options.segmentSize}.`,
    );
  }
  if (!Number.isInteger(options.timeline) || options.timeline < 1 || options.timeline > 0xffffffff) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_OPTIONS',
      `Timeline must be an integer from 1 to 4294967295, got ${options.timeline}.`,
    );
  }
  if (options.systemId < 0n || options.systemId > 0xffffffffffffffffn) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_OPTIONS',
      `System identifier must fit in 64 bits, got ${options.systemId}.`,
    );
  }
  if (
    options.pageMagic !== undefined &&
    (!Number.isInteger(options.pageMagic) || options.pageMagic < 0 || options.pageMagic > 0xffff)
  ) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_OPTIONS',
      `Page magic must be a 16-bit integer, got ${options.pageMagic}.`,
    );
  }
  if (options.pageMagic === undefined && options.serverVersion === undefined) {
    throw new WalFormatError(
      'WAL_ERR_WAL_FORMAT_OPTIONS',
      'Give the WAL generator a pageMagic or a serverVersion.',
    );
  }
}

export class WalGenerator {
  readonly seed: number;
  readonly segmentSize: number;
  readonly timeline: number;
  readonly systemId: bigint;
  readonly pageMagic: number;
  /** First LSN with bytes (a segment start); for a child, the parent's origin. */
  readonly originLsn: bigint;
  /** Where this generator's own records begin: `originLsn`, or the parent switch point. */
  readonly switchLsn: bigint | undefined;
  readonly parent: WalGenerator | undefined;

  private readonly segmentSizeBig: bigint;
  private readonly baseInfo: number;
  private readonly salt: number;
  private readonly pool: Buffer;
  private readonly prefixCrc: Uint32Array;
  private readonly prefixCrcKnown: Uint8Array;
  /** The pool part of a payload by payload length: a cached view, so writing a record allocates nothing. */
  private readonly poolViews: (Uint8Array | undefined)[] = [];
  private readonly scratch: Buffer;
  private scratchStart = -1;
  /** First segment holding this generator's own bytes, and the offset in it where they begin. */
  private readonly firstOwnSegment: bigint;
  private readonly firstOwnOffset: number;
  /** Stream state at the start of each own segment (at `firstOwnOffset` for the first). */
  private readonly segmentStates = new Map<bigint, StreamState>();
  private highestKnownSegment: bigint;
  private readonly segmentCache = new Map<bigint, Buffer>();

  constructor(options: WalGeneratorOptions) {
    checkOptions(options);
    this.seed = options.seed | 0;
    this.segmentSize = options.segmentSize;
    this.segmentSizeBig = BigInt(options.segmentSize);
    this.timeline = options.timeline;
    this.systemId = options.systemId;
    this.pageMagic = options.pageMagic ?? pageMagicForVersion(options.serverVersion!);
    const major =
      options.serverVersion === undefined
        ? undefined
        : options.serverVersion >= 1000
          ? Math.floor(options.serverVersion / 10000)
          : options.serverVersion;
    const backupRemovable =
      options.backupRemovable ?? (major === undefined ? this.pageMagic < 0xd121 : major < 19);
    this.baseInfo = backupRemovable ? PageInfo.BACKUP_REMOVABLE : 0;
    this.salt = mix32(Math.imul(this.seed, 0x9e3779b1) ^ mix32(this.timeline));
    this.pool = this.buildPool();
    this.prefixCrc = new Uint32Array(LARGEST_DATA_LENGTH + 1);
    this.prefixCrcKnown = new Uint8Array(LARGEST_DATA_LENGTH + 1);
    this.scratch = Buffer.alloc(mainDataRecordLength(LARGEST_DATA_LENGTH));

    if (options.parent === undefined) {
      const origin = options.originLsn ?? this.segmentSizeBig;
      if (origin < 0n || origin % this.segmentSizeBig !== 0n) {
        throw new WalFormatError(
          'WAL_ERR_WAL_FORMAT_OPTIONS',
          `originLsn must be a segment start (a multiple of ${this.segmentSize}), got ${origin}.`,
        );
      }
      this.parent = undefined;
      this.switchLsn = undefined;
      this.originLsn = origin;
      this.firstOwnSegment = origin / this.segmentSizeBig;
      this.firstOwnOffset = 0;
      this.segmentStates.set(this.firstOwnSegment, { nextIndex: 0, previous: 0, pending: undefined });
    } else {
      const { generator: parent, switchLsn } = options.parent;
      if (parent.segmentSize !== this.segmentSize) {
        throw new WalFormatError(
          'WAL_ERR_WAL_FORMAT_OPTIONS',
          `A timeline continues its parent's segment size ${parent.segmentSize}, got ${this.segmentSize}.`,
        );
      }
      if (this.timeline <= parent.timeline) {
        throw new WalFormatError(
          'WAL_ERR_WAL_FORMAT_OPTIONS',
          `A new timeline must be greater than its parent's ${parent.timeline}, got ${this.timeline}.`,
        );
      }
      const previous = parent.recordBefore(switchLsn);
      if (previous === undefined) {
        throw new WalFormatError(
          'WAL_ERR_WAL_FORMAT_OPTIONS',
          `Switch point ${switchLsn} is not where a record of the parent timeline starts; use recordStartAtOrAfter().`,
        );
      }
      this.parent = parent;
      this.switchLsn = switchLsn;
      this.originLsn = parent.originLsn;
      this.firstOwnSegment = switchLsn / this.segmentSizeBig;
      this.firstOwnOffset = Number(switchLsn % this.segmentSizeBig);
      this.segmentStates.set(this.firstOwnSegment, {
        nextIndex: 0,
        previous: Number(previous),
        pending: undefined,
      });
    }
    this.highestKnownSegment = this.firstOwnSegment;
  }

  /** The bytes of segment `segmentNumber` (the whole file as the server has it). Read-only: shared and cached. */
  segmentBytes(segmentNumber: bigint): Buffer {
    this.checkSegment(segmentNumber);
    if (segmentNumber < this.firstOwnSegment) return this.parent!.segmentBytes(segmentNumber);
    const cached = this.segmentCache.get(segmentNumber);
    if (cached !== undefined) return cached;
    // Not zero-filled: walkSegment writes every byte, alignment padding included.
    const target = Buffer.allocUnsafeSlow(this.segmentSize);
    if (this.firstOwnOffset > 0 && segmentNumber === this.firstOwnSegment) {
      this.parent!.segmentBytes(segmentNumber).copy(target, 0, 0, this.firstOwnOffset);
    }
    const state = this.stateAtSegment(segmentNumber);
    const startOffset = segmentNumber === this.firstOwnSegment ? this.firstOwnOffset : 0;
    const next = this.walkSegment(state, segmentNumber, startOffset, target, undefined);
    this.rememberState(segmentNumber + 1n, next);
    if (this.segmentCache.size >= CACHED_SEGMENTS) {
      const oldest = this.segmentCache.keys().next().value as bigint;
      this.segmentCache.delete(oldest);
    }
    this.segmentCache.set(segmentNumber, target);
    return target;
  }

  /**
   * A segment file as a server holding WAL up to `endLsn` (exclusive) would have it: the bytes, then
   * zeros. Without `endLsn`, the complete segment.
   */
  segmentFile(segmentNumber: bigint, options: { endLsn?: bigint } = {}): Buffer {
    const bytes = this.segmentBytes(segmentNumber);
    const start = segmentNumber * this.segmentSizeBig;
    if (options.endLsn === undefined || options.endLsn >= start + this.segmentSizeBig) return bytes;
    const copy = Buffer.alloc(this.segmentSize);
    if (options.endLsn > start) bytes.copy(copy, 0, 0, Number(options.endLsn - start));
    return copy;
  }

  /**
   * The WAL bytes of `[from, to)`. Within one segment this is a view of the cached segment (no copy; do
   * not modify it); across segments, one new buffer.
   */
  read(from: bigint, to: bigint): Buffer {
    if (to < from) {
      throw new WalFormatError(
        'WAL_ERR_WAL_FORMAT_RANGE',
        `WAL range end ${to} is before its start ${from}.`,
      );
    }
    if (from < this.originLsn) {
      throw new WalFormatError(
        'WAL_ERR_WAL_FORMAT_RANGE',
        `WAL at ${from} is before the generated WAL, which starts at ${this.originLsn}.`,
      );
    }
    const firstSegment = from / this.segmentSizeBig;
    const lastSegment = to === from ? firstSegment : (to - 1n) / this.segmentSizeBig;
    if (firstSegment === lastSegment) {
      const base = firstSegment * this.segmentSizeBig;
      return this.segmentBytes(firstSegment).subarray(Number(from - base), Number(to - base));
    }
    const result = Buffer.allocUnsafe(Number(to - from));
    let written = 0;
    for (let segment = firstSegment; segment <= lastSegment; segment++) {
      const base = segment * this.segmentSizeBig;
      const start = segment === firstSegment ? Number(from - base) : 0;
      const end = segment === lastSegment ? Number(to - base) : this.segmentSize;
      written += this.segmentBytes(segment).copy(result, written, start, end);
    }
    return result;
  }

  /** Every record that starts in `[from, to)`, in order (walks sizes only; no bytes are produced). */
  recordsBetween(from: bigint, to: bigint): GeneratedRecord[] {
    const records: GeneratedRecord[] = [];
    if (to <= from) return records;
    const start = from < this.originLsn ? this.originLsn : from;
    for (let segment = start / this.segmentSizeBig; segment * this.segmentSizeBig < to; segment++) {
      this.forEachRecordInSegment(segment, (lsn, totalLength) => {
        if (lsn >= from && lsn < to) records.push({ lsn, totalLength });
      });
    }
    return records;
  }

  /** The first record start at or after `lsn` (a valid `parent.switchLsn`, or a record-aligned end point). */
  recordStartAtOrAfter(lsn: bigint): bigint {
    let segment = (lsn < this.originLsn ? this.originLsn : lsn) / this.segmentSizeBig;
    for (;;) {
      let found: bigint | undefined;
      this.forEachRecordInSegment(segment, (start) => {
        if (found === undefined && start >= lsn) found = start;
      });
      if (found !== undefined) return found;
      segment++;
    }
  }

  /**
   * If a record starts exactly at `lsn`, the start of the record before it (its `xl_prev`), else
   * undefined. The first record of the WAL has `xl_prev` 0.
   */
  recordBefore(lsn: bigint): bigint | undefined {
    if (lsn < this.originLsn) return undefined;
    const segment = lsn / this.segmentSizeBig;
    let previous = this.previousAtSegmentStart(segment);
    let result: bigint | undefined;
    this.forEachRecordInSegment(segment, (start) => {
      if (start === lsn) result = previous;
      previous = start;
    });
    return result;
  }

  private previousAtSegmentStart(segment: bigint): bigint {
    if (segment < this.firstOwnSegment) return this.parent!.previousAtSegmentStart(segment);
    if (segment === this.firstOwnSegment && this.firstOwnOffset > 0) {
      return this.parent!.previousAtSegmentStart(segment);
    }
    const state = this.stateAtSegment(segment);
    return BigInt(state.pending?.start ?? state.previous);
  }

  private forEachRecordInSegment(
    segment: bigint,
    onRecord: (lsn: bigint, totalLength: number) => void,
  ): void {
    this.checkSegment(segment);
    if (segment < this.firstOwnSegment) {
      this.parent!.forEachRecordInSegment(segment, onRecord);
      return;
    }
    if (segment === this.firstOwnSegment && this.firstOwnOffset > 0) {
      const switchLsn = this.switchLsn!;
      this.parent!.forEachRecordInSegment(segment, (lsn, length) => {
        if (lsn < switchLsn) onRecord(lsn, length);
      });
    }
    const state = this.stateAtSegment(segment);
    const startOffset = segment === this.firstOwnSegment ? this.firstOwnOffset : 0;
    const next = this.walkSegment(state, segment, startOffset, undefined, onRecord);
    this.rememberState(segment + 1n, next);
  }

  private checkSegment(segment: bigint): void {
    if (segment * this.segmentSizeBig < this.originLsn) {
      throw new WalFormatError(
        'WAL_ERR_WAL_FORMAT_RANGE',
        `Segment ${segment} is before the generated WAL, which starts at LSN ${this.originLsn}.`,
      );
    }
    if ((segment + 1n) * this.segmentSizeBig > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new WalFormatError(
        'WAL_ERR_WAL_FORMAT_RANGE',
        `Segment ${segment} lies beyond 2^53 bytes of WAL, where the generator's LSN arithmetic would be inexact.`,
      );
    }
  }

  private rememberState(segment: bigint, state: StreamState): void {
    if (!this.segmentStates.has(segment)) {
      this.segmentStates.set(segment, state);
      if (segment > this.highestKnownSegment) this.highestKnownSegment = segment;
    }
  }

  /** The state at the start of an own segment, walking record sizes forward from the last one known. */
  private stateAtSegment(segment: bigint): StreamState {
    const known = this.segmentStates.get(segment);
    if (known !== undefined) return known;
    let current = this.highestKnownSegment;
    let state = this.segmentStates.get(current)!;
    while (current < segment) {
      const startOffset = current === this.firstOwnSegment ? this.firstOwnOffset : 0;
      state = this.walkSegment(state, current, startOffset, undefined, undefined);
      current++;
      this.rememberState(current, state);
    }
    return state;
  }

  /**
   * Lay out records from `startOffset` (where `state` holds) to the segment end. With a target, write
   * every byte into it (headers, records, zero padding); with `onRecord`, report
   * each record start. Returns the state at the next segment's start.
   */
  private walkSegment(
    state: StreamState,
    segment: bigint,
    startOffset: number,
    target: Buffer | undefined,
    onRecord: ((lsn: bigint, totalLength: number) => void) | undefined,
  ): StreamState {
    const segmentStart = Number(segment * this.segmentSizeBig);
    const segmentSize = this.segmentSize;
    let nextIndex = state.nextIndex;
    let previous = state.previous;
    let pending = state.pending === undefined ? undefined : { ...state.pending };
    let offset = startOffset;
    while (offset < segmentSize) {
      if (offset % WAL_PAGE_SIZE === 0) {
        const isFirstPage = offset === 0;
        const remaining = pending === undefined ? 0 : pending.totalLength - pending.written;
        if (target !== undefined) {
          this.writePageHeader(target, offset, segmentStart + offset, isFirstPage, remaining);
        }
        offset += isFirstPage ? LONG_PAGE_HEADER_SIZE : SHORT_PAGE_HEADER_SIZE;
      }
      const pageEnd = offset - (offset % WAL_PAGE_SIZE) + WAL_PAGE_SIZE;
      if (pending !== undefined) {
        const count = Math.min(pending.totalLength - pending.written, pageEnd - offset);
        if (target !== undefined) {
          const record = this.materialize(pending);
          record.copy(target, offset, pending.written, pending.written + count);
        }
        pending.written += count;
        offset += count;
        if (pending.written === pending.totalLength) {
          pending = undefined;
          const aligned = maximumAlign(offset);
          if (target !== undefined) while (offset < aligned) target[offset++] = 0;
          offset = aligned;
        }
        continue;
      }
      const index = nextIndex++;
      const totalLength = mainDataRecordLength(this.dataLength(index));
      const start = segmentStart + offset;
      if (onRecord !== undefined) onRecord(BigInt(start), totalLength);
      if (offset + totalLength <= pageEnd) {
        const end = offset + totalLength;
        const aligned = maximumAlign(end);
        if (target !== undefined) {
          this.writeRecord(target, offset, index, start, previous);
          for (let padding = end; padding < aligned; padding++) target[padding] = 0;
        }
        offset = aligned;
      } else {
        pending = { index, start, previous, totalLength, written: 0 };
      }
      previous = start;
    }
    return { nextIndex, previous, pending };
  }

  private writePageHeader(
    target: Buffer,
    offset: number,
    pageAddress: number,
    isFirstPage: boolean,
    remaining: number,
  ): void {
    let info = this.baseInfo;
    if (isFirstPage) info |= PageInfo.LONG_HEADER;
    if (remaining > 0) info |= PageInfo.FIRST_IS_CONTRECORD;
    target.writeUInt16LE(this.pageMagic, offset);
    target.writeUInt16LE(info, offset + 2);
    target.writeUInt32LE(this.timeline, offset + 4);
    writeUint64(target, pageAddress, offset + 8);
    target.writeUInt32LE(remaining, offset + 16);
    target.writeUInt32LE(0, offset + 20);
    if (isFirstPage) {
      target.writeBigUInt64LE(this.systemId, offset + 24);
      target.writeUInt32LE(this.segmentSize, offset + 32);
      target.writeUInt32LE(WAL_PAGE_SIZE, offset + 36);
    }
  }

  /** The whole record of a pending (page-crossing) record, built once into the scratch buffer. */
  private materialize(pending: PendingRecord): Buffer {
    if (this.scratchStart !== pending.start) {
      this.writeRecord(this.scratch, 0, pending.index, pending.start, pending.previous);
      this.scratchStart = pending.start;
    }
    return this.scratch;
  }

  /** Payload bytes of record `index`: 70 % small, 25 % medium, 5 % spanning up to three pages. */
  private dataLength(index: number): number {
    const hash = mix32(Math.imul(index, 0x9e3779b1) ^ this.salt);
    const bucket = hash % 100;
    const spread = hash >>> 7;
    if (bucket < 70) return MINIMUM_DATA_LENGTH + (spread % 200);
    if (bucket < 95) return 208 + (spread % 1800);
    // Large payloads in steps of 64 bytes: few distinct lengths keep the cached prefix CRCs cheap.
    return 2008 + (spread % 313) * 64;
  }

  private poolOffset(dataLength: number): number {
    return (dataLength * 131) % POOL_SPREAD;
  }

  /** CRC state over the main-data header and the pool part of a payload of `dataLength` bytes. */
  private prefixState(dataLength: number): number {
    if (this.prefixCrcKnown[dataLength] === 1) return this.prefixCrc[dataLength]!;
    const header = Buffer.alloc(5);
    const headerSize = encodeMainDataHeader(header, 0, dataLength);
    let state = updateCrc32c(CRC32C_INITIAL, header, 0, headerSize);
    const poolStart = this.poolOffset(dataLength);
    state = updateCrc32c(state, this.pool, poolStart, poolStart + dataLength - 8);
    this.prefixCrc[dataLength] = state;
    this.prefixCrcKnown[dataLength] = 1;
    return state;
  }

  /**
   * Record `index` at `target[offset]`: XLOG NOOP whose main data is a slice of the pool followed by
   * the record's own LSN (so no two records are alike and a misplaced byte range is detectable).
   */
  private writeRecord(target: Buffer, offset: number, index: number, start: number, previous: number): void {
    const dataLength = this.dataLength(index);
    const totalLength = mainDataRecordLength(dataLength);
    target.writeUInt32LE(totalLength, offset);
    target.writeUInt32LE(0, offset + 4);
    writeUint64(target, previous, offset + 8);
    target[offset + 16] = XLOG_NOOP;
    target[offset + 17] = RM_XLOG_ID;
    target[offset + 18] = 0;
    target[offset + 19] = 0;
    const headerSize = encodeMainDataHeader(target, offset + RECORD_HEADER_SIZE, dataLength);
    let poolView = this.poolViews[dataLength];
    if (poolView === undefined) {
      const poolStart = this.poolOffset(dataLength);
      poolView = this.pool.subarray(poolStart, poolStart + dataLength - 8);
      this.poolViews[dataLength] = poolView;
    }
    // TypedArray#set: a plain memcpy, where Buffer#copy with offsets would make a view per call.
    target.set(poolView, offset + RECORD_HEADER_SIZE + headerSize);
    const tail = offset + totalLength - 8;
    writeUint64(target, start, tail);
    let state = updateCrc32c(this.prefixState(dataLength), target, tail, tail + 8);
    state = updateCrc32c(state, target, offset, offset + RECORD_CRC_OFFSET);
    target.writeUInt32LE(finishCrc32c(state), offset + RECORD_CRC_OFFSET);
  }

  private buildPool(): Buffer {
    const pool = Buffer.alloc(LARGEST_DATA_LENGTH + POOL_SPREAD);
    // xorshift32 seeded from the seed: any deterministic filler will do; zero would hide misplacements.
    let state = mix32(this.seed ^ 0x5bd1e995) || 1;
    for (let index = 0; index < pool.length; index += 4) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      pool.writeInt32LE(state | 0, index);
    }
    return pool;
  }
}

/** A generator: see {@link WalGeneratorOptions}. */
export function createWalGenerator(options: WalGeneratorOptions): WalGenerator {
  return new WalGenerator(options);
}

/**
 * The bytes of `[startLsn, endLsn)` of the WAL described by `options` (default end: the end of the
 * segment holding `startLsn`). Unless `originLsn` is given the WAL begins at the segment holding
 * `startLsn`, so the same options give the same bytes only with the same origin; keep one
 * {@link WalGenerator} to read several ranges of one WAL.
 */
export function generateWal(options: WalGeneratorOptions & { startLsn: bigint; endLsn?: bigint }): Buffer {
  const segmentSize = BigInt(options.segmentSize);
  const originLsn =
    options.originLsn ?? options.startLsn - (options.startLsn % (segmentSize > 0n ? segmentSize : 1n));
  const generator = new WalGenerator({ ...options, originLsn });
  const endLsn = options.endLsn ?? options.startLsn - (options.startLsn % segmentSize) + segmentSize;
  return Buffer.from(generator.read(options.startLsn, endLsn));
}
