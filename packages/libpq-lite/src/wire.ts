import type { Socket } from 'node:net';
import type { BackendMessage, FrontendMessage } from '@wal/protocol';
import { decodeBackendMessage, encodeFrontendMessage, MessageFramer, WalError } from '@wal/protocol';
import { ConnectionError } from './errors.js';
import { describeBackend, describeFrontend, type TraceSink } from './trace.js';

/** A frame as the framer hands it out (`code` 0 never occurs on a client). */
export interface Frame {
  code: number;
  payload: Buffer;
}

/** Above this many unread bytes we stop reading the socket, so TCP flow control reaches the server. */
export const HIGH_WATER_MARK = 1024 * 1024;

/**
 * The message layer over one socket (plain or TLS): frames are queued as they arrive and handed
 * out in order. Payloads come from the framer, which never reuses a buffer it handed out, so a
 * caller may keep a payload for as long as it likes. Reading pauses while too much is unread.
 */
export class Wire {
  readonly socket: Socket;
  private readonly framer = new MessageFramer();
  private frames: Frame[] = [];
  private head = 0;
  private queuedBytes = 0;
  private paused = false;
  private failure: WalError | undefined;
  private waiter: (() => void) | undefined;
  /** Set once the session is established: EOF from then on is "lost", before it "closed". */
  established = false;
  readonly trace: TraceSink | undefined;
  readonly description: string;

  constructor(socket: Socket, options: { trace?: TraceSink | undefined; description: string }) {
    this.socket = socket;
    this.trace = options.trace;
    this.description = options.description;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
    // A socket handed over after the SSL negotiation may have been paused.
    socket.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.framer.push(chunk);
      for (let frame = this.framer.next(); frame !== undefined; frame = this.framer.next()) {
        this.frames.push(frame);
        this.queuedBytes += frame.payload.length + 5;
      }
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
    this.wake();
  };

  private readonly onEnd = (): void => {
    this.fail(
      this.established
        ? new ConnectionError(
            'WAL_ERR_CONNECTION_LOST',
            `connection to ${this.description} was lost: the server closed the connection unexpectedly ` +
              '(it may have been shut down or restarted, or a network device dropped the connection)',
          )
        : new ConnectionError(
            'WAL_ERR_CONNECTION_CLOSED',
            `server at ${this.description} closed the connection unexpectedly during the handshake; ` +
              'this probably means the server terminated abnormally before or while processing the request (see its log)',
          ),
    );
  };

  private readonly onError = (error: Error): void => {
    this.fail(
      new ConnectionError(
        this.established ? 'WAL_ERR_CONNECTION_LOST' : 'WAL_ERR_CONNECTION_CLOSED',
        `connection to ${this.description} failed: ${error.message}`,
        { cause: error },
      ),
    );
  };

  /** Records the first failure; later ones are consequences. */
  fail(error: WalError): void {
    if (this.failure === undefined) this.failure = error;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
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
    if (this.paused && this.queuedBytes <= HIGH_WATER_MARK / 2) {
      this.paused = false;
      this.socket.resume();
    }
    return frame;
  }

  /**
   * Resolves true when a frame is available or the wire failed, false after `timeoutMs` or when
   * `signal` aborts.
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
    return new Promise<boolean>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (value: boolean): void => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (this.waiter === onReady) this.waiter = undefined;
        resolve(value);
      };
      const onReady = (): void => finish(true);
      const onAbort = (): void => finish(false);
      this.waiter = onReady;
      if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => finish(false), Math.max(0, timeoutMs));
        timer.unref?.();
      }
      signal?.addEventListener('abort', onAbort, { once: true });
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
    return message;
  }

  send(message: FrontendMessage): void {
    const frame = encodeFrontendMessage(message);
    if (this.trace !== undefined) this.trace(describeFrontend(message, frame.length));
    this.writeFrame(frame);
  }

  /** Writes bytes that are already a whole frame. */
  writeFrame(frame: Buffer): void {
    if (this.failure !== undefined) throw this.failure;
    this.socket.write(frame);
  }

  destroy(): void {
    this.socket.destroy();
  }
}
