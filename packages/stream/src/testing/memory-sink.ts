import type { SinkCloseReason, WalSink } from '../sink.js';

export interface RecordedWrite {
  timeline: number;
  startLsn: bigint;
  data: Buffer;
}

/**
 * A WalSink in memory for tests. Writes resolve at once unless `holdWrites` is set; then each
 * write waits for `releaseWrite()`. WAL becomes durable when a segment completes (like a segment
 * renamed by sink-fs) and on flush().
 */
export class MemorySink implements WalSink {
  readonly writes: RecordedWrite[] = [];
  readonly historyFiles = new Map<number, Buffer>();
  readonly calls: string[] = [];
  prepared: { systemId: bigint; segmentSize: number; fileMode?: number } | undefined;
  resume: { lsn: bigint; timeline: number } | undefined;
  durableLsn = 0n;
  writtenLsn = 0n;
  holdWrites = false;
  /** The reason the last close() was given. */
  closeReason: SinkCloseReason | undefined;
  /** Writes currently running (> 1 would mean the stream overlapped writes). */
  running = 0;
  maximumRunning = 0;
  failWrite: Error | undefined;
  failHistory: Error | undefined;
  readonly #released: (() => void)[] = [];
  #onWriteStarted: (() => void) | undefined;

  async prepare(info: { systemId: bigint; segmentSize: number; fileMode?: number }): Promise<void> {
    this.calls.push('prepare');
    this.prepared = info;
  }

  async resumePoint(): Promise<{ lsn: bigint; timeline: number } | undefined> {
    return this.resume;
  }

  async hasHistoryFile(timeline: number): Promise<boolean> {
    return this.historyFiles.has(timeline);
  }

  async writeHistoryFile(timeline: number, content: Buffer): Promise<void> {
    this.calls.push(`history ${timeline}`);
    if (this.failHistory !== undefined) throw this.failHistory;
    this.historyFiles.set(timeline, content);
  }

  async write(timeline: number, startLsn: bigint, data: Buffer): Promise<void> {
    this.calls.push('write');
    this.running++;
    this.maximumRunning = Math.max(this.maximumRunning, this.running);
    try {
      if (this.holdWrites) {
        const released = new Promise<void>((resolve) => this.#released.push(resolve));
        const started = this.#onWriteStarted;
        this.#onWriteStarted = undefined;
        started?.();
        await released;
      }
      if (this.failWrite !== undefined) throw this.failWrite;
      this.record(timeline, startLsn, data);
    } finally {
      this.running--;
    }
  }

  protected get segmentSize(): bigint {
    return BigInt(this.prepared?.segmentSize ?? 16 * 1024 * 1024);
  }

  protected record(timeline: number, startLsn: bigint, data: Buffer): void {
    this.writes.push({ timeline, startLsn, data: Buffer.from(data) });
    this.writtenLsn = startLsn + BigInt(data.length);
    const completed = this.writtenLsn - (this.writtenLsn % this.segmentSize);
    if (completed > this.durableLsn) this.durableLsn = completed;
  }

  /** Resolves when the next held write has started. */
  nextWriteStarted(): Promise<void> {
    return new Promise((resolve) => {
      this.#onWriteStarted = resolve;
    });
  }

  /** Lets the oldest held write finish, or the one at `index` among those held (to finish out of order). */
  releaseWrite(index = 0): void {
    this.#released.splice(index, 1)[0]?.();
  }

  get heldWrites(): number {
    return this.#released.length;
  }

  async flush(): Promise<bigint> {
    this.calls.push('flush');
    return this.makeDurable();
  }

  protected makeDurable(): bigint {
    if (this.writtenLsn > this.durableLsn) this.durableLsn = this.writtenLsn;
    return this.durableLsn;
  }

  async close(reason?: SinkCloseReason): Promise<void> {
    this.calls.push('close');
    this.closeReason = reason;
    if (this.writtenLsn > this.durableLsn) this.durableLsn = this.writtenLsn;
  }

  /** All bytes written, concatenated, with the first start LSN. */
  contiguous(): { startLsn: bigint; data: Buffer } | undefined {
    const first = this.writes[0];
    if (first === undefined) return undefined;
    return { startLsn: first.startLsn, data: Buffer.concat(this.writes.map((write) => write.data)) };
  }
}

/**
 * A MemorySink that can also write and flush at once (WalSink.writeAtOnce, flushAtOnce), the way
 * DirectorySink with blocking writes does: at once except at a segment start (there the file is
 * opened asynchronously) and while `holdWrites` is set. Calling either while one of its calls is
 * still running breaks the WalSink contract, and throws.
 */
export class AtOnceMemorySink extends MemorySink {
  #pending = 0;

  override async write(timeline: number, startLsn: bigint, data: Buffer): Promise<void> {
    this.#pending++;
    try {
      await super.write(timeline, startLsn, data);
    } finally {
      this.#pending--;
    }
  }

  override async flush(): Promise<bigint> {
    this.#pending++;
    try {
      return await super.flush();
    } finally {
      this.#pending--;
    }
  }

  writeAtOnce(timeline: number, startLsn: bigint, data: Buffer): boolean {
    this.#requireIdle('writeAtOnce');
    if (this.holdWrites || startLsn % this.segmentSize === 0n) return false;
    this.calls.push('write-at-once');
    if (this.failWrite !== undefined) throw this.failWrite;
    this.record(timeline, startLsn, data);
    return true;
  }

  flushAtOnce(): bigint | undefined {
    this.#requireIdle('flushAtOnce');
    this.calls.push('flush-at-once');
    return this.makeDurable();
  }

  #requireIdle(method: string): void {
    if (this.#pending > 0) throw new Error(`${method} called while ${this.#pending} sink call(s) still run`);
  }
}
