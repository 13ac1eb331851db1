import type { CopyEvent, EndOfStreamResult, ReadLease, ReplicationStream } from '@wal/libpq-lite';
import {
  decodeStandbyStatusUpdate,
  encodePrimaryKeepalive,
  encodeXLogData,
  formatLsn,
  type StandbyStatusUpdate,
} from '@wal/protocol';
import type { IdentifySystemResult, ReplicationConnection } from '../connection.js';
import type { Clock } from '../copy-stream.js';

/** What the client sent during COPY, decoded. */
export type SentMessage =
  | ({ type: 'status' } & StandbyStatusUpdate)
  | { type: 'copy-data'; data: Buffer }
  | { type: 'copy-done' };

type QueueItem = CopyEvent | { type: 'throw'; error: unknown };

/** A clock the test moves by hand; a FakeReplicationStream with it advances it on timed waits. */
export class ManualClock implements Clock {
  now = 1_000_000;
  wallOffset = 1_700_000_000_000;
  monotonic(): number {
    return this.now;
  }
  wall(): number {
    return this.wallOffset + this.now;
  }
  advance(ms: number): void {
    this.now += ms;
  }
}

/**
 * An in-memory ReplicationStream (the @wal/libpq-lite contract) scripted by the test: `push`
 * queues what the server sends, `sent` records what the client sent, and `onSend` lets the test
 * react like a server (for example answer the client's CopyDone).
 */
export class FakeReplicationStream implements ReplicationStream {
  readonly kind = 'copy' as const;
  readonly sent: SentMessage[] = [];
  onSend: ((message: SentMessage, stream: FakeReplicationStream) => void) | undefined;
  /** When set, a timed wait with nothing queued advances this clock by the timeout and returns false. */
  simulatedClock: ManualClock | undefined;
  /** Counts waitForMessage calls (to check that buffered messages are read without waiting). */
  waits = 0;
  /** Set by `blockWrites`: the server is not reading what the client sends. */
  writeBlocked = false;
  readonly #writableWaiters: (() => void)[] = [];
  readonly #queue: QueueItem[] = [];
  #wake: (() => void) | undefined;
  /** Bytes read so far, counted as on the wire: type byte, length, payload. */
  #position = 0;
  /** Where the message last read starts (what `retain` leases). */
  #lastStart = 0;
  /** CopyData read and not released yet, with the position just past each. */
  readonly #unreleased: { end: number; data: Buffer }[] = [];
  /** Starts of the messages retained and not released yet, oldest first. */
  readonly #retained: number[] = [];
  /** The highest position before which the client holds nothing (see `release`). */
  releasedPosition = 0;

  push(...events: CopyEvent[]): this {
    this.#queue.push(...events);
    this.#notify();
    return this;
  }

  pushWal(dataStart: bigint, data: Buffer, walEnd = dataStart + BigInt(data.length)): this {
    return this.push({ type: 'copy-data', data: encodeXLogData({ dataStart, walEnd, sendTime: 0n, data }) });
  }

  pushKeepalive(walEnd: bigint, replyRequested: boolean): this {
    return this.push({
      type: 'copy-data',
      data: encodePrimaryKeepalive({ walEnd, sendTime: 0n, replyRequested }),
    });
  }

  pushEnd(result: Partial<EndOfStreamResult> = {}): this {
    return this.push({
      type: 'end',
      result: { commandTags: ['START_STREAMING', 'START_REPLICATION'], serverClosed: false, ...result },
    });
  }

  /** readMessage throws `error` once the queue reaches this point. */
  pushError(error: unknown): this {
    this.#queue.push({ type: 'throw', error });
    this.#notify();
    return this;
  }

  /** Makes the client's CopyDone answered like a walsender: CopyDone, then the end of COPY. */
  answerCopyDone(result: Partial<EndOfStreamResult> = {}): this {
    const previous = this.onSend;
    this.onSend = (message, stream) => {
      previous?.(message, stream);
      if (message.type === 'copy-done') stream.push({ type: 'copy-done' }).pushEnd(result);
    };
    return this;
  }

  /** The server stops (true) or resumes (false) reading what the client sends. */
  blockWrites(blocked: boolean): this {
    this.writeBlocked = blocked;
    if (!blocked) for (const resolve of this.#writableWaiters.splice(0)) resolve();
    return this;
  }

  whenWritable(): Promise<void> {
    if (!this.writeBlocked) return Promise.resolve();
    return new Promise((resolve) => this.#writableWaiters.push(resolve));
  }

  get statuses(): ({ type: 'status' } & StandbyStatusUpdate)[] {
    return this.sent.filter((message) => message.type === 'status');
  }

  /** Messages the server has queued that the client has not read yet. */
  get unread(): number {
    return this.#queue.length;
  }

  readMessage(): CopyEvent | undefined {
    const item = this.#queue.shift();
    if (item === undefined) return undefined;
    if (item.type === 'throw') throw item.error;
    this.#lastStart = this.#position;
    this.#position += item.type === 'copy-data' ? 5 + item.data.length : 5;
    if (item.type === 'copy-data') this.#unreleased.push({ end: this.#position, data: item.data });
    return item;
  }

  get position(): number {
    return this.#position;
  }

  retain(): ReadLease {
    this.#retained.push(this.#lastStart);
    return this.#lastStart as ReadLease;
  }

  /**
   * Like the real connection, which reads into the released memory again: the data of every
   * CopyData released is overwritten with 0xEE, so a client releasing what a sink still writes
   * writes that instead of the WAL and the test sees it.
   */
  release(lease?: ReadLease): void {
    if (lease !== undefined) {
      const index = this.#retained.indexOf(lease);
      if (index < 0) throw new Error(`FakeReplicationStream: release of a lease not held (${lease})`);
      this.#retained.splice(index, 1);
    }
    const position = this.#retained.length > 0 ? (this.#retained[0] as number) : this.#position;
    if (position > this.releasedPosition) this.releasedPosition = position;
    while (this.#unreleased.length > 0 && this.#unreleased[0]!.end <= this.releasedPosition) {
      this.#unreleased.shift()!.data.fill(0xee);
    }
  }

  waitForMessage(timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    this.waits++;
    if (this.#queue.length > 0) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    if (timeoutMs !== undefined && this.simulatedClock !== undefined) {
      this.simulatedClock.advance(timeoutMs);
      return Promise.resolve(false);
    }
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => finish(false), timeoutMs);
      const onAbort = (): void => finish(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#wake = () => finish(true);
      function finish(value: boolean): void {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      }
    });
  }

  sendCopyData(payload: Buffer): void {
    this.#record({ type: 'copy-data', data: Buffer.from(payload) });
  }

  sendFrame(frame: Buffer): void {
    // 'd', Int32 length, payload: only standby status updates are sent as frames.
    if (frame[0] !== 0x64 || frame.readInt32BE(1) !== frame.length - 1) {
      throw new Error(`FakeReplicationStream: unexpected frame ${frame.toString('hex')}`);
    }
    this.#record({ type: 'status', ...decodeStandbyStatusUpdate(Buffer.from(frame.subarray(5))) });
  }

  sendCopyDone(): void {
    this.#record({ type: 'copy-done' });
  }

  #record(message: SentMessage): void {
    this.sent.push(message);
    this.onSend?.(message, this);
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

export interface StartReplicationRequest {
  slot?: string;
  startLsn: bigint;
  timeline: number;
}

export type StartReplicationAnswer = FakeReplicationStream | { kind: 'no-copy'; result: EndOfStreamResult };

/**
 * An in-memory replication Connection (the @wal/libpq-lite contract): fixed answers to
 * IDENTIFY_SYSTEM, SHOW, TIMELINE_HISTORY and READ_REPLICATION_SLOT, and a test callback for
 * START_REPLICATION. `commands` lists the commands in the order they were run.
 */
export class FakeConnection implements ReplicationConnection {
  serverVersion = 170004;
  parameters = new Map<string, string>([
    ['integer_datetimes', 'on'],
    ['server_version', '17.4'],
  ]);
  identify: IdentifySystemResult = {
    systemId: 7_310_000_000_000_000_001n,
    timeline: 1,
    xlogPosition: 0x3000090n,
    databaseName: null,
  };
  settings = new Map<string, string>([
    ['data_directory_mode', '0700'],
    ['wal_segment_size', '16MB'],
  ]);
  histories = new Map<number, { fileName: string; content: Buffer }>();
  slots = new Map<
    string,
    { slotType: string | null; restartLsn: bigint | null; restartTimeline: number | null }
  >();
  readonly commands: string[] = [];
  closed = false;
  destroyed = false;
  onStartReplication: (
    request: StartReplicationRequest,
  ) => StartReplicationAnswer | Promise<StartReplicationAnswer>;
  /** Streams handed out by START_REPLICATION, in order. */
  readonly streams: FakeReplicationStream[] = [];

  constructor(onStartReplication?: (request: StartReplicationRequest) => StartReplicationAnswer) {
    this.onStartReplication =
      onStartReplication ??
      (() => {
        throw new Error('FakeConnection: START_REPLICATION not scripted');
      });
  }

  async identifySystem(): Promise<IdentifySystemResult> {
    this.commands.push('IDENTIFY_SYSTEM');
    return { ...this.identify };
  }

  async show(name: string): Promise<string> {
    this.commands.push(`SHOW ${name}`);
    const value = this.settings.get(name);
    if (value === undefined)
      throw new Error(`FakeConnection: unrecognized configuration parameter "${name}"`);
    return value;
  }

  async timelineHistory(timeline: number): Promise<{ fileName: string; content: Buffer }> {
    this.commands.push(`TIMELINE_HISTORY ${timeline}`);
    const history = this.histories.get(timeline);
    if (history === undefined) throw new Error(`FakeConnection: no history for timeline ${timeline}`);
    return history;
  }

  async readReplicationSlot(
    slot: string,
  ): Promise<{ slotType: string | null; restartLsn: bigint | null; restartTimeline: number | null }> {
    this.commands.push(`READ_REPLICATION_SLOT ${slot}`);
    return this.slots.get(slot) ?? { slotType: null, restartLsn: null, restartTimeline: null };
  }

  async startReplication(request: StartReplicationRequest): Promise<StartReplicationAnswer> {
    const slot = request.slot === undefined ? '' : `SLOT "${request.slot}" `;
    this.commands.push(
      `START_REPLICATION ${slot}${formatLsn(request.startLsn)} TIMELINE ${request.timeline}`,
    );
    const answer = await this.onStartReplication(request);
    if (answer instanceof FakeReplicationStream) this.streams.push(answer);
    return answer;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  destroy(): void {
    this.destroyed = true;
  }
}
