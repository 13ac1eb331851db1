import type { Socket } from 'node:net';
import type { BackendMessage, Frame, FrontendMessage, NoticeFields } from '@wal/protocol';
import {
  decodeBackendMessage,
  encodeFrontendMessage,
  MessageFramer,
  systemErrorText,
  WalError,
} from '@wal/protocol';
import { ConnectionError } from './errors.js';
import type { SocketReader } from './socket-reader.js';
import { describeBackend, describeFrontend, type TraceSink } from './trace.js';

/** libpq's words for a connection the server closed (fe-misc.c pqReadData). */
const SERVER_CLOSED =
  'server closed the connection unexpectedly\n' +
  '\tThis probably means the server terminated abnormally\n' +
  '\tbefore or while processing the request.';

/**
 * What `retain()` returns: it keeps one message's memory from being read into again until it is
 * given back to `release()`. Opaque to callers.
 */
export type ReadLease = number & { readonly __readLease: unique symbol };

/**
 * Above this many unread bytes we stop reading the socket, so TCP flow control reaches the server.
 * Reading resumes once the consumer drained the queue to `LOW_WATER_MARK`: the gap between the two
 * is what one pause/resume cycle (a `readStop` and a `readStart`) buys, so it is wide. Every unread
 * byte is resident memory, and the kernel's socket buffer holds more behind it anyway, so a larger
 * mark buys no speed (bench/README.md, "Memory").
 */
export const HIGH_WATER_MARK = 1024 * 1024;
export const LOW_WATER_MARK = 256 * 1024;

/**
 * The message layer over one socket (plain or TLS): frames are queued as they arrive and handed
 * out in order. A payload stays unchanged for as long as the caller holds it, until the caller
 * says it no longer does (`release`): only then may its memory be read into again. Reading pauses
 * while too much is unread.
 */
export class Wire {
  readonly socket: Socket;
  private readonly framer = new MessageFramer();
  private frames: Frame[] = [];
  private head = 0;
  private queuedBytes = 0;
  /** Bytes of the frames handed out by `shift()` so far: where the next one starts. */
  private shiftedBytes = 0;
  /** Where the frame last handed out starts (see `retain`). */
  private lastFrameStart = 0;
  /** Starts of the frames retained and not released yet, oldest first. */
  private readonly retained: number[] = [];
  private readonly reader: SocketReader | undefined;
  /** The reader's stream offset of this wire's first byte. */
  private readerBase = 0;
  private paused = false;
  private failure: WalError | undefined;
  /** The pending `wait()`: resolved with true by a frame or a failure, false by its deadline or signal. */
  private waiter: ((ready: boolean) => void) | undefined;
  /** When the pending wait times out (a `performance.now()` value), Infinity without a timeout. */
  private waitDeadline = Number.POSITIVE_INFINITY;
  /**
   * One timer shared by consecutive waits: it stays armed while waits come and go and is replaced
   * only when a wait needs an earlier deadline, so a consumer that waits once per message does not
   * create and clear a timer per message.
   */
  private timer: NodeJS.Timeout | undefined;
  private timerDeadline = Number.POSITIVE_INFINITY;
  /** The signal our abort listener is on; kept between waits for the same reason as the timer. */
  private listenedSignal: AbortSignal | undefined;
  /** Set once the session is established: EOF from then on is "lost", before it "closed". */
  established = false;
  readonly trace: TraceSink | undefined;
  /** Where notices go: every NoticeResponse decoded, whoever reads it (ConnectOptions.onNotice). */
  private readonly onNotice: ((notice: NoticeFields) => void) | undefined;
  readonly description: string;

  /**
   * `reader`: the socket was opened with `reader.options` as its `onread` (see SocketReader); the
   * bytes then come from the reader, not from 'data' events. Without it (TLS sockets, sockets from
   * elsewhere) the wire listens to 'data'.
   */
  constructor(
    socket: Socket,
    options: {
      trace?: TraceSink | undefined;
      onNotice?: ((notice: NoticeFields) => void) | undefined;
      description: string;
      reader?: SocketReader | undefined;
    },
  ) {
    this.socket = socket;
    this.trace = options.trace;
    this.onNotice = options.onNotice;
    this.description = options.description;
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    this.reader = options.reader;
    if (options.reader === undefined) {
      socket.on('data', this.onData);
    } else {
      this.readerBase = options.reader.deliveredBytes;
      options.reader.target = this.onData;
    }
    // A socket handed over after the SSL negotiation may have been paused.
    socket.resume();
  }

  private readonly onData = (chunk: Buffer, carried = 0): void => {
    const queued = this.frames.length;
    try {
      if (carried > 0) this.framer.relocateBuffered(chunk.subarray(0, carried));
      this.framer.push(carried > 0 ? chunk.subarray(carried) : chunk);
      for (let frame = this.framer.next(); frame !== undefined; frame = this.framer.next()) {
        this.frames.push(frame);
        this.queuedBytes += frame.payload.length + 5;
      }
      if (this.reader !== undefined) this.reader.unfinishedLength = this.framer.bufferedLength;
    } catch (error) {
      this.fail(
        error instanceof WalError ? error : new ConnectionError('WAL_ERR_CONNECTION_LOST', String(error)),
      );
      this.socket.destroy();
      return;
    }
    if (!this.paused && this.queuedBytes > HIGH_WATER_MARK) {
      this.paused = true;
      this.socket.pause();
    }
    // A chunk that only continues a frame (a 128 kB XLogData message spans several reads) gives the
    // consumer nothing to read: waking it would only make it wait again.
    if (this.frames.length > queued) this.wake(true);
  };

  private readonly onEnd = (): void => {
    this.releaseWaitResources();
    this.fail(
      this.established
        ? new ConnectionError(
            'WAL_ERR_CONNECTION_LOST',
            // The command that was running says where (`could not receive data from WAL stream: `).
            SERVER_CLOSED,
          )
        : new ConnectionError(
            'WAL_ERR_CONNECTION_CLOSED',
            `connection to ${this.description} failed: ${SERVER_CLOSED}`,
          ),
    );
  };

  private readonly onError = (error: Error): void => {
    this.fail(
      new ConnectionError(
        this.established ? 'WAL_ERR_CONNECTION_LOST' : 'WAL_ERR_CONNECTION_CLOSED',
        this.established
          ? `could not receive data from server: ${systemErrorText(error) ?? error.message}`
          : `connection to ${this.description} failed: ${systemErrorText(error) ?? error.message}`,
        { cause: error },
      ),
    );
  };

  /** Records the first failure; later ones are consequences. */
  fail(error: WalError): void {
    if (this.failure === undefined) this.failure = error;
    this.wake(true);
  }

  private wake(ready: boolean): void {
    const waiter = this.waiter;
    if (waiter === undefined) return;
    this.waiter = undefined;
    this.waitDeadline = Number.POSITIVE_INFINITY;
    waiter(ready);
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerDeadline = Number.POSITIVE_INFINITY;
    if (this.waiter === undefined) return;
    const deadline = this.waitDeadline;
    if (deadline === Number.POSITIVE_INFINITY) return;
    const remaining = deadline - performance.now();
    // The timer was armed for this deadline or an earlier one; Node may fire a little early
    // (its loop clock is cached), so anything within a millisecond is the deadline.
    if (remaining <= 1) this.wake(false);
    else this.armTimer(deadline, remaining);
  };

  private readonly onAbort = (): void => {
    this.wake(false);
  };

  private armTimer(deadline: number, delayMs: number): void {
    if (this.timer !== undefined) {
      if (this.timerDeadline <= deadline) return;
      clearTimeout(this.timer);
    }
    this.timerDeadline = deadline;
    this.timer = setTimeout(this.onTimer, Math.max(0, delayMs));
    this.timer.unref?.();
  }

  private listen(signal: AbortSignal | undefined): void {
    if (signal === this.listenedSignal) return;
    this.listenedSignal?.removeEventListener('abort', this.onAbort);
    this.listenedSignal = signal;
    signal?.addEventListener('abort', this.onAbort);
  }

  /** Drops the shared timer and abort listener (they hold this wire alive). */
  private releaseWaitResources(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDeadline = Number.POSITIVE_INFINITY;
    this.listen(undefined);
  }

  get failed(): WalError | undefined {
    return this.failure;
  }

  /** True when the next `shift()` returns a frame or the wire has failed. */
  get readable(): boolean {
    return this.head < this.frames.length || this.failure !== undefined;
  }

  /** The next frame already received, or undefined. Throws nothing: check `failed` when undefined. */
  shift(): Frame | undefined {
    if (this.head >= this.frames.length) return undefined;
    const frame = this.frames[this.head]!;
    this.frames[this.head] = undefined as unknown as Frame;
    this.head++;
    if (this.head === this.frames.length) {
      this.frames = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
    this.queuedBytes -= frame.payload.length + 5;
    this.lastFrameStart = this.shiftedBytes;
    this.shiftedBytes += frame.payload.length + 5;
    if (this.paused && this.queuedBytes <= LOW_WATER_MARK) {
      this.paused = false;
      this.socket.resume();
    }
    return frame;
  }

  /**
   * Keeps the payload of the frame last handed out by `shift()` (and every view taken of it)
   * unchanged until `release(lease)` is called with the lease returned. See `release`.
   */
  retain(): ReadLease {
    this.retained.push(this.lastFrameStart);
    return this.lastFrameStart as ReadLease;
  }

  /**
   * The caller holds no view of any frame handed out so far, except those it retained and has not
   * released; with `lease`, not of that one either. The memory of frames nobody holds may then be
   * read into again (docs/adr/0001-buffer-ownership.md). Until the first call nothing handed out
   * is ever overwritten, so a caller that never calls it may keep every payload as long as it
   * likes. Wires that read through Node's 'data' events (TLS) never reuse memory.
   */
  release(lease?: ReadLease): void {
    if (lease !== undefined) {
      const index = this.retained[0] === lease ? 0 : this.retained.indexOf(lease);
      if (index === 0) this.retained.shift();
      else if (index > 0) this.retained.splice(index, 1);
    }
    const boundary = this.retained.length > 0 ? (this.retained[0] as number) : this.shiftedBytes;
    this.reader?.release(this.readerBase + boundary);
  }

  /**
   * Resolves true when a frame is available or the wire failed, false after `timeoutMs` or when
   * `signal` aborts. Cheap to call once per message: the timer and the abort listener are shared
   * by consecutive waits (see `timer`), only the promise is new.
   */
  wait(timeoutMs?: number, signal?: AbortSignal): Promise<boolean> {
    if (this.readable) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    if (this.waiter !== undefined) {
      // One consumer at a time; a second waiter would starve the first.
      return Promise.reject(
        new ConnectionError('WAL_ERR_CONNECTION_STATE', 'two callers are waiting on one connection'),
      );
    }
    if (timeoutMs !== undefined && Number.isNaN(timeoutMs)) {
      return Promise.reject(
        new ConnectionError(
          'WAL_ERR_CONNECTION_STATE',
          'wait timeout must be a number of milliseconds, got NaN',
        ),
      );
    }
    return new Promise<boolean>((resolve) => {
      this.waiter = resolve;
      this.listen(signal);
      if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
        const delay = Math.max(0, timeoutMs);
        const deadline = performance.now() + delay;
        this.waitDeadline = deadline;
        this.armTimer(deadline, delay);
      }
    });
  }

  /** The next frame, waiting as needed; throws the wire's failure. */
  async nextFrame(): Promise<Frame> {
    for (;;) {
      const frame = this.shift();
      if (frame !== undefined) return frame;
      if (this.failure !== undefined) throw this.failure;
      await this.wait();
    }
  }

  /** The next message, decoded; traced when tracing is on. */
  async nextMessage(): Promise<BackendMessage> {
    const frame = await this.nextFrame();
    return this.decode(frame);
  }

  decode(frame: Frame): BackendMessage {
    const message = decodeBackendMessage(frame.code, frame.payload);
    if (this.trace !== undefined) this.trace(describeBackend(message, frame.payload.length));
    // Every reader of the wire skips notices; decoding is the one place all of them pass.
    if (message.type === 'NoticeResponse') this.onNotice?.(message.fields);
    return message;
  }

  send(message: FrontendMessage): void {
    const frame = encodeFrontendMessage(message);
    if (this.trace !== undefined) this.trace(describeFrontend(message, frame.length));
    this.writeFrame(frame);
  }

  /**
   * True while the socket holds more unsent bytes than its buffer takes without asking us to wait
   * for 'drain': the server is not reading what we send. A caller that writes on its own schedule
   * (status updates) holds its writes until `whenWritable()`, so nothing queues without bound.
   */
  get writeBlocked(): boolean {
    // A failed wire is not blocked: the caller reads on and meets the failure.
    return this.socket.writableNeedDrain && !this.socket.destroyed && this.failure === undefined;
  }

  /** Bytes written and not handed to the kernel yet. */
  get pendingWriteBytes(): number {
    return this.socket.writableLength;
  }

  /** Resolves once the socket takes writes again ('drain'), or ends, fails or closes. */
  whenWritable(): Promise<void> {
    if (!this.writeBlocked) return Promise.resolve();
    const socket = this.socket;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', done);
        socket.off('end', done);
        socket.off('error', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
      socket.on('end', done);
      socket.on('error', done);
    });
  }

  /** Writes bytes that are already a whole frame. */
  writeFrame(frame: Buffer): void {
    if (this.failure !== undefined) throw this.failure;
    this.socket.write(frame);
  }

  destroy(): void {
    this.releaseWaitResources();
    this.socket.destroy();
  }
}
