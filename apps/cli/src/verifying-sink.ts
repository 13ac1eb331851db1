import { formatLsn, parseLsn, walFileName } from '@wal/protocol';
import type { SinkCloseReason, WalSink } from '@wal/stream';
import { VerifyError, WalChecker } from '@wal/verify/checker';

/**
 * `wal receive --verify`: a WalSink in front of the real one that checks page headers, the record
 * chain and every record's CRC-32C before the bytes go on (docs/adr/0009-wal-verify.md). On the
 * first bad page or record it writes the bytes before it and fails with
 * WAL_ERR_VERIFY_CORRUPT_WAL naming the LSN. Flush positions it reports never pass the end of the
 * last good record, so the server is never told that unchecked WAL is safe here. The data is
 * read in place (the checker copies only headers split across messages).
 */
export class VerifyingSink implements WalSink {
  readonly #inner: WalSink;
  #checker: WalChecker | undefined;
  #segmentSize = 0;
  /** Where the next write must start to continue the checked stream. */
  #next: bigint | undefined;
  #timeline = 0;
  /** Before any record is complete: the start of the checked stream (nothing is vouched for). */
  #floor = 0n;

  constructor(inner: WalSink) {
    this.#inner = inner;
  }

  get durableLsn(): bigint {
    return this.#clamp(this.#inner.durableLsn);
  }

  prepare(info: { systemId: bigint; segmentSize: number; fileMode?: number }): Promise<void> {
    this.#segmentSize = info.segmentSize;
    this.#checker = new WalChecker({ segmentSize: info.segmentSize });
    this.#next = undefined;
    return this.#inner.prepare(info);
  }

  resumePoint(): Promise<{ lsn: bigint; timeline: number } | undefined> {
    return this.#inner.resumePoint();
  }

  hasHistoryFile(timeline: number): Promise<boolean> {
    return this.#inner.hasHistoryFile(timeline);
  }

  writeHistoryFile(timeline: number, content: Buffer): Promise<void> {
    return this.#inner.writeHistoryFile(timeline, content);
  }

  async write(timeline: number, startLsn: bigint, data: Buffer): Promise<void> {
    const bad = this.#check(timeline, startLsn, data);
    if (bad === undefined) return this.#inner.write(timeline, startLsn, data);
    if (bad.keep > 0) await this.#inner.write(timeline, startLsn, data.subarray(0, bad.keep));
    throw bad.error;
  }

  get writeAtOnce(): WalSink['writeAtOnce'] {
    const inner = this.#inner;
    if (inner.writeAtOnce === undefined) return undefined;
    return (timeline, startLsn, data) => {
      const bad = this.#check(timeline, startLsn, data);
      if (bad === undefined) return inner.writeAtOnce!(timeline, startLsn, data);
      // Not at once: write() writes what is good, then fails.
      this.#pending = bad;
      return false;
    };
  }

  #pending: { keep: number; error: VerifyError } | undefined;

  async flush(): Promise<bigint> {
    return this.#clamp(await this.#inner.flush());
  }

  get flushAtOnce(): WalSink['flushAtOnce'] {
    const inner = this.#inner;
    if (inner.flushAtOnce === undefined) return undefined;
    return () => {
      const durable = inner.flushAtOnce!();
      return durable === undefined ? undefined : this.#clamp(durable);
    };
  }

  close(reason?: SinkCloseReason): Promise<void> {
    return this.#inner.close(reason);
  }

  #clamp(durable: bigint): bigint {
    const good = this.#checker?.lastGoodRecordEnd ?? this.#floor;
    return durable < good ? durable : good;
  }

  /** Checks `data`; undefined when it is good, else how many bytes before the fault to keep. */
  #check(timeline: number, startLsn: bigint, data: Buffer): { keep: number; error: VerifyError } | undefined {
    if (this.#pending !== undefined) {
      const pending = this.#pending;
      this.#pending = undefined;
      return pending;
    }
    const checker = this.#checker!;
    if (this.#next !== startLsn || this.#timeline !== timeline) {
      // Nothing from here on is vouched for until a record ends (the checker restarts its chain).
      if (this.#next !== startLsn) this.#floor = startLsn;
      const segment = startLsn / BigInt(this.#segmentSize);
      checker.beginFile({
        name: walFileName(timeline, segment, this.#segmentSize),
        timeline,
        startLsn,
        partial: false,
      });
      this.#timeline = timeline;
    }
    checker.feed(data);
    this.#next = startLsn + BigInt(data.length);
    const problem = checker.firstProblem;
    if (problem === undefined) return undefined;
    const lsn = parseLsn(problem.lsn!);
    const keep = lsn > startLsn ? Number(lsn - startLsn) : 0;
    const good = checker.lastGoodRecordEnd;
    const error = new VerifyError(
      'WAL_ERR_VERIFY_CORRUPT_WAL',
      `received WAL is corrupt at ${problem.lsn}: ${problem.message}. The WAL before it is kept; no flush position past ${good === undefined ? formatLsn(this.#floor) : formatLsn(good)} (the end of the last good record) was reported.`,
      { lsn },
    );
    return { keep: Math.min(keep, data.length), error };
  }
}
